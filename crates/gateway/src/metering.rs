//! Metering: which function a call used, and how many tokens.
