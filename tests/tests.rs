//! The one integration-test binary (ripgrep style): modules by feature, helpers in support/.

mod fetch;
mod parsers;
mod support;
