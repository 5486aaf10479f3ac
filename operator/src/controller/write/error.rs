//! What can fail when writing, naming the object.

use crate::controller::vocabulary::describe;

/// A write that failed, naming the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server-side apply was refused.
    #[error("applying {kind} {namespace}/{name}: {}", describe(.source))]
    Apply {
        /// Kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Reading a child whole (to compare it) failed.
    #[error("reading {kind} {namespace}/{name}: {}", describe(.source))]
    Read {
        /// Kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Deleting an object the spec no longer asks for failed.
    #[error("deleting {kind} {namespace}/{name}: {}", describe(.source))]
    Delete {
        /// Kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The generated passwords are gone while the data they protect is not.
    #[error(
        "Secret {namespace}/{name} holding the generated passwords is missing while {stateful_sets} exist: restore the Secret \
         from a backup, or delete the StatefulSets and their volumes to start with empty datastores"
    )]
    CredentialsLost {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The StatefulSets whose data needs the lost passwords.
        stateful_sets: String,
    },
    /// The generated credentials could not be created or completed.
    #[error("writing Secret {namespace}/{name}: {}", describe(.source))]
    Credentials {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}
