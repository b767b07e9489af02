//! Image primitives every stage shares: is it an image and what is it (`check`: sniffing,
//! limits, decoding, the perceptual hash), the memory every decode shares (`budget`), JPEG
//! through libjpeg-turbo (`jpeg`), and colour (`color`: luma, planar and interleaved
//! layouts, sRGB <-> Lab).
//!
//! Owns `[images]` and `[dedup]`, resizing (`resize`) and image quality (`quality`:
//! PSNR, SSIM, CIEDE2000, colourfulness); imports only `setting`.

pub mod budget;
pub mod check;
pub mod color;
pub mod config;
pub mod jpeg;
pub mod quality;
pub mod resize;
