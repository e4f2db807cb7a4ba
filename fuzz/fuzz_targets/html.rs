//! The bounded HTML reader on arbitrary text: no panic, output within twice the input, and
//! main-content extraction bounded the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use newsflow::normalize::html::{extract, html_to_text};

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let text = html_to_text(&html);
    assert!(text.len() <= 2 * html.len() + 16, "text of {} bytes", text.len());
    let extraction = extract(&html);
    assert!(extraction.text.len() <= 2 * html.len() + 16);
});
