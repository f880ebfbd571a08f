//! Building images (the classic builder behind `POST /build`).

pub mod dockerfile;
pub mod context;
pub mod error;
pub mod layer;
