//! Massive (formerly Polygon) WebSocket: stocks and options trades and quotes → canonical
//! events. (Being written.)
