//! Usage records (written by the gateway).
