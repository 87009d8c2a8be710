//! Databento Live: the raw TCP gateway protocol (CRAM authentication, subscriptions, a DBN
//! stream) → canonical events. (Being written.)
