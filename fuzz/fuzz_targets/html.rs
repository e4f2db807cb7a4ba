//! The bounded HTML reader on arbitrary text: no panic, output within twice the input, and
//! main-content extraction bounded the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use newsflow::normalize::html::{MAX_EXPANSION, extract, html_to_text};

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    let text = html_to_text(&html);
    let bound = MAX_EXPANSION * html.len() + 16;
    assert!(text.len() <= bound, "text of {} bytes", text.len());
    let extraction = extract(&html);
    assert!(extraction.text.len() <= bound);
});
