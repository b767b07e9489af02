//! The pix2pix trainer on libtorch (tch 0.24), behind the `train` cargo feature:
//! `model` (the networks).

pub mod model;
