//! JPEG through libjpeg-turbo: decoding at a reduced DCT scale, shared by `validate`
//! (1/8, to check every scan cheaply) and `build` (the smallest scale that keeps the
//! stored size), or at full size in gray for `serve`; encoding, for the report's small
//! pictures.

/// Decoded pixels, and what libjpeg complained about, if anything. After a mere warning
/// (stray bytes between segments, a stream cut short) `pixels` still holds a whole image.
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub problem: Option<String>,
}

/// Decodes `bytes` to interleaved `format` pixels (RGB, or GRAY: the stored luma alone,
/// with no chroma work) at `width` x `height`, which must be the image's size divided
/// (rounding up) by 1, 2, 4 or 8: asking for exactly that size makes libjpeg-turbo pick the
/// matching DCT scale.
pub fn decode(
    bytes: &[u8],
    width: usize,
    height: usize,
    format: turbojpeg::PixelFormat,
) -> Result<Decoded, turbojpeg::Error> {
    // A fresh handle each time: libjpeg-turbo 2.1 keeps state after an error or a warning,
    // and a reused handle was seen to pass a truncated file after a bad one.
    let mut decoder = turbojpeg::Decompressor::new()?;
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; format.size() * width * height],
        width,
        pitch: format.size() * width,
        height,
        format,
    };
    let problem = decoder.decompress(bytes, image.as_deref_mut()).err().map(|e| e.to_string());
    Ok(Decoded { pixels: image.pixels, problem })
}

/// Width and height from the header.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize), turbojpeg::Error> {
    let header = turbojpeg::read_header(bytes)?;
    Ok((header.width, header.height))
}

/// Encodes interleaved RGB `pixels` of `width` x `height` as a JPEG of `quality` (1-100),
/// chroma subsampled 4:2:0.
pub fn encode_rgb(
    pixels: &[u8],
    width: usize,
    height: usize,
    quality: i32,
) -> Result<Vec<u8>, turbojpeg::Error> {
    let image = turbojpeg::Image {
        pixels,
        width,
        pitch: 3 * width,
        height,
        format: turbojpeg::PixelFormat::RGB,
    };
    Ok(turbojpeg::compress(image, quality, turbojpeg::Subsamp::Sub2x2)?.to_vec())
}
