//! Building images (the classic builder behind `POST /build`).

pub mod dockerfile;
