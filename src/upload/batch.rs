//! Files sent together (one admin form today; the CLI and the JSON API next): every accepted
//! file is stored with what the sender chose for all of them, every refused one reported.

use crate::db::models::user::User;
use crate::domain::{AccessRule, UserId};

use super::{Destination, Received, Refusal, StoreError, StoreRequest, StoredFile, store_accepted};

/// One file of a batch as it arrived: streamed into a pending upload, or refused on the way.
pub enum Slot {
    Accepted(String, Received),
    Refused(String, Refusal),
}

/// What applies to every file of a batch.
pub struct Batch {
    /// The title the sender gave; empty for "the file's name".
    pub title: String,
    pub owner: User,
    pub uploader: User,
    pub rule: AccessRule,
    pub readers: Vec<UserId>,
    pub slots: Vec<Slot>,
}

/// One file of a batch and what became of it.
pub struct Outcome {
    pub name: String,
    pub stored: Option<StoredFile>,
    pub refusal: Option<Refusal>,
}

/// Stores the accepted files one after another, in the order they came. A storage or
/// database failure stops the batch: the files stored before it stay stored (each is whole,
/// with its row), the ones after it are dropped with their pending uploads.
pub async fn store_batch(
    destination: &Destination,
    batch: Batch,
) -> Result<Vec<Outcome>, StoreError> {
    let several = batch.slots.len() > 1;
    let mut outcomes = Vec::with_capacity(batch.slots.len());
    for slot in batch.slots {
        match slot {
            Slot::Refused(name, refusal) => outcomes.push(Outcome {
                name,
                stored: None,
                refusal: Some(refusal),
            }),
            Slot::Accepted(name, received) => {
                let request = StoreRequest {
                    title: title_for(&batch.title, &name, several),
                    name: name.clone(),
                    owner: batch.owner.clone(),
                    uploader: batch.uploader.clone(),
                    rule: batch.rule,
                    readers: batch.readers.clone(),
                };
                let stored = store_accepted(destination, received, request).await?;
                outcomes.push(Outcome {
                    name,
                    stored: Some(stored),
                    refusal: None,
                });
            }
        }
    }
    Ok(outcomes)
}

/// A file's title: the sender's, told apart by the file's name when it covers several files.
pub fn title_for(title: &str, name: &str, several: bool) -> String {
    match (title.is_empty(), several) {
        (true, _) => name.to_owned(),
        (false, false) => title.to_owned(),
        (false, true) => format!("{title} ({name})"),
    }
}

#[cfg(test)]
mod tests {
    use super::title_for;

    #[test]
    fn titles_fall_back_to_the_name_and_tell_several_files_apart() {
        assert_eq!(title_for("", "a.pdf", false), "a.pdf");
        assert_eq!(title_for("", "a.pdf", true), "a.pdf");
        assert_eq!(title_for("Payslips", "a.pdf", false), "Payslips");
        assert_eq!(title_for("Payslips", "a.pdf", true), "Payslips (a.pdf)");
    }
}
