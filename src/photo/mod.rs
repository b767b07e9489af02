//! Image primitives every stage shares: is it an image and what is it (`check`: sniffing,
//! limits, decoding, the perceptual hash), the memory every decode shares (`budget`), JPEG
//! through libjpeg-turbo (`jpeg`), colour (`color`: luma, planar and interleaved layouts,
//! sRGB <-> Lab), and near-duplicate search over perceptual hashes (`near`).
//!
//! Owns `[images]` and `[dedup]`, resizing (`resize`) and image quality (`quality`:
//! PSNR, SSIM, CIEDE2000, colourfulness); imports only `setting`.

pub mod budget;
pub mod check;
pub mod color;
pub mod config;
pub mod jpeg;
pub mod near;
pub mod quality;
pub mod resize;
