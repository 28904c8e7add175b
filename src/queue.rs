//! A bounded worker pool on crossbeam-channel.
