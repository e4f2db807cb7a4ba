//! HTML to plain text: block elements become paragraphs, scripts and styles vanish.

/// Width passed to the renderer: wide enough that it never wraps a paragraph.
const NO_WRAP_WIDTH: usize = 1_000_000;

/// Converts an HTML document or fragment to text with one paragraph per line.
pub fn html_to_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), NO_WRAP_WIDTH)
        .unwrap_or_else(|_| strip_tags(html))
}

/// Fallback when the renderer fails: drop everything between `<` and `>`.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_survive_and_scripts_do_not() {
        let text = html_to_text(
            "<html><head><script>var x=1;</script><style>p{}</style></head><body>\
             <h1>Title</h1><p>One &amp; <b>two</b>.</p><p>Three.</p></body></html>",
        );
        assert!(text.contains("One & two."), "{text}");
        assert!(text.contains("Three."), "{text}");
        assert!(!text.contains("var x"), "{text}");
    }
}
