//! An upload's SHA-256, computed on the blocking pool a batch at a time while the next batch
//! arrives. On the async thread the hash was a third of a large upload's CPU time (perf, 1 GiB
//! upload), time in which the request was not read; now it runs beside the receiving.

use actix_web::web::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

/// Bytes gathered before they are hashed off the async thread. The batch holds references to
/// the received chunks, not copies; an upload holds at most two batches (one hashing, one
/// filling).
const BATCH: usize = 128 * 1024;

pub struct Hasher {
    batch: Vec<Bytes>,
    batch_len: usize,
    state: State,
}

enum State {
    Idle(Box<Sha256>),
    Hashing(JoinHandle<Box<Sha256>>),
    /// Only while a batch is being handed over, or after the hashing task died.
    Lost,
}

#[derive(Debug, thiserror::Error)]
#[error("hashing the upload failed: {0}")]
pub struct HashError(String);

impl Hasher {
    pub fn new() -> Self {
        Self {
            batch: Vec::new(),
            batch_len: 0,
            state: State::Idle(Box::new(Sha256::new())),
        }
    }

    pub async fn update(&mut self, chunk: &Bytes) -> Result<(), HashError> {
        self.batch_len += chunk.len();
        self.batch.push(chunk.clone());
        if self.batch_len >= BATCH {
            let mut hasher = self.take().await?;
            let batch = std::mem::take(&mut self.batch);
            self.batch_len = 0;
            self.state = State::Hashing(tokio::task::spawn_blocking(move || {
                for bytes in &batch {
                    hasher.update(bytes);
                }
                hasher
            }));
        }
        Ok(())
    }

    /// The hex digest of everything given to `update`.
    pub async fn finish(mut self) -> Result<String, HashError> {
        let mut hasher = self.take().await?;
        // The rest is less than one batch: not worth a hop.
        for bytes in &self.batch {
            hasher.update(bytes);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// The hasher, once the batch before has been hashed.
    async fn take(&mut self) -> Result<Box<Sha256>, HashError> {
        match std::mem::replace(&mut self.state, State::Lost) {
            State::Idle(hasher) => Ok(hasher),
            State::Hashing(job) => job.await.map_err(|e| HashError(e.to_string())),
            State::Lost => Err(HashError("an earlier batch was lost".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_hash_to_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = Hasher::new();
        // Uneven chunks, so batches end mid-chunk boundaries of the data.
        for piece in data.chunks(7_777) {
            hasher.update(&Bytes::copy_from_slice(piece)).await.unwrap();
        }
        assert_eq!(
            hasher.finish().await.unwrap(),
            hex::encode(Sha256::digest(&data))
        );
        assert_eq!(
            Hasher::new().finish().await.unwrap(),
            hex::encode(Sha256::digest(b""))
        );
    }
}
