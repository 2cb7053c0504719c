//! A durable webhook pipeline (being written).
