//! Fresh random identifiers (a leaf: imports nothing of the crate).

/// A fresh random id (tokens, codes, request ids): v4 UUID from the OS generator, so tokens are
/// unguessable even when the fleet is seeded.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
