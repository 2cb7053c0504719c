//! Fan-out over a fleet of vehicles (being written).
