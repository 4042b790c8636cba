//! A storage's place in its bucket, shared by the storage and its uploads: the client, the
//! bucket's name, the key prefix (the storage's `location`) and how objects are written.

use rusoto_s3::{DeleteObjectRequest, HeadObjectRequest, S3, S3Client};

use super::error::classify;
use crate::config::S3Encryption;
use crate::storage::StorageError;

/// Objects are written private whatever the bucket's default says.
const PRIVATE_ACL: &str = "private";

#[derive(Clone)]
pub(super) struct Bucket {
    pub(super) client: S3Client,
    pub(super) name: String,
    /// The key prefix, empty or ending in `/`.
    prefix: String,
    encryption: Option<S3Encryption>,
}

/// The request fields every write of an object sets (`PutObject`, `CreateMultipartUpload`,
/// `CopyObject`): the private ACL and the configured server-side encryption.
pub(super) struct WriteFields {
    pub(super) acl: Option<String>,
    pub(super) server_side_encryption: Option<String>,
    pub(super) ssekms_key_id: Option<String>,
}

impl Bucket {
    pub(super) fn new(
        client: S3Client,
        name: String,
        location: &str,
        encryption: Option<S3Encryption>,
    ) -> Self {
        let prefix = if location.is_empty() {
            String::new()
        } else {
            format!("{location}/")
        };
        Self {
            client,
            name,
            prefix,
            encryption,
        }
    }

    /// The object key of `name` (a storage key, or a name under `.tmp/`): the storage's
    /// location, then `name`. Every key this storage reads or writes is built here.
    pub(super) fn object_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(super) fn write_fields(&self) -> WriteFields {
        let (server_side_encryption, ssekms_key_id) = match &self.encryption {
            None => (None, None),
            Some(S3Encryption::Aes256) => (Some("AES256".to_owned()), None),
            Some(S3Encryption::Kms { key_id }) => {
                (Some("aws:kms".to_owned()), Some(key_id.clone()))
            }
        };
        WriteFields {
            acl: Some(PRIVATE_ACL.to_owned()),
            server_side_encryption,
            ssekms_key_id,
        }
    }

    /// Whether an object exists. A 403 here means credentials that may not read the bucket:
    /// a configuration problem, never "not found".
    pub(super) async fn exists(&self, object_key: &str) -> Result<bool, StorageError> {
        let head = self
            .client
            .head_object(HeadObjectRequest {
                bucket: self.name.clone(),
                key: object_key.to_owned(),
                ..Default::default()
            })
            .await;
        match head {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = classify(e, object_key);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }

    pub(super) async fn delete(&self, object_key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object(DeleteObjectRequest {
                bucket: self.name.clone(),
                key: object_key.to_owned(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| classify(e, object_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusoto_core::credential::StaticProvider;
    use rusoto_core::{HttpClient, Region};

    /// A bucket that is never asked anything.
    fn bucket(location: &str, encryption: Option<S3Encryption>) -> Bucket {
        let client = S3Client::new_with(
            HttpClient::new().expect("an HTTP client"),
            StaticProvider::new_minimal("id".into(), "secret".into()),
            Region::Custom {
                name: "us-east-1".into(),
                endpoint: "http://127.0.0.1:9".into(),
            },
        );
        Bucket::new(client, "b".into(), location, encryption)
    }

    #[test]
    fn object_keys_lie_under_the_location() {
        assert_eq!(bucket("", None).object_key("a/b.txt"), "a/b.txt");
        assert_eq!(bucket("media", None).object_key("a/b.txt"), "media/a/b.txt");
        assert_eq!(bucket("x/y", None).object_key(".tmp/1"), "x/y/.tmp/1");
    }

    #[test]
    fn writes_are_private_and_encrypted_as_configured() {
        let plain = bucket("", None).write_fields();
        assert_eq!(plain.acl.as_deref(), Some("private"));
        assert_eq!(plain.server_side_encryption, None);
        assert_eq!(plain.ssekms_key_id, None);
        let aes = bucket("", Some(S3Encryption::Aes256)).write_fields();
        assert_eq!(aes.server_side_encryption.as_deref(), Some("AES256"));
        assert_eq!(aes.ssekms_key_id, None);
        let kms = bucket(
            "",
            Some(S3Encryption::Kms {
                key_id: "k1".into(),
            }),
        )
        .write_fields();
        assert_eq!(kms.acl.as_deref(), Some("private"));
        assert_eq!(kms.server_side_encryption.as_deref(), Some("aws:kms"));
        assert_eq!(kms.ssekms_key_id.as_deref(), Some("k1"));
    }
}
