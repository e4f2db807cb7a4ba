//! The article's language: the record's tag (checked here), a page's `lang` attribute, or
//! detected in its text (whatlang).

/// A plausible BCP 47 / ISO 639 tag: a 2–3 letter language, then subtags of 1–8 letters or
/// digits, separated by `-` (or `_`, as locales often write them).
pub(crate) fn is_language_tag(tag: &str) -> bool {
    if tag.len() > crate::parse::MAX_LANGUAGE_BYTES {
        return false;
    }
    let mut parts = tag.split(['-', '_']);
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The primary subtag of a `lang` attribute (`en-US` → `en`), if it looks like a language.
pub(crate) fn primary_language(lang: &str) -> Option<String> {
    let primary = lang.trim().split(['-', '_']).next()?;
    ((2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

/// Detects the language of title and body (first 2,000 characters), as ISO 639-1.
pub(crate) fn detect(title: &str, body: &str) -> Option<String> {
    let sample: String = title
        .chars()
        .chain(['\n'])
        .chain(body.chars())
        .take(2_000)
        .collect();
    let info = whatlang::detect(&sample)?;
    if !info.is_reliable() && sample.split_whitespace().count() < 5 {
        return None;
    }
    Some(iso_639_1(info.lang()).to_string())
}

/// ISO 639-1 for the languages news arrives in; ISO 639-3 otherwise.
fn iso_639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Eng => "en",
        Fra => "fr",
        Deu => "de",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Nld => "nl",
        Rus => "ru",
        Ukr => "uk",
        Pol => "pl",
        Tur => "tr",
        Ara => "ar",
        Hin => "hi",
        Cmn => "zh",
        Jpn => "ja",
        Kor => "ko",
        Swe => "sv",
        Dan => "da",
        Nob => "no",
        Fin => "fi",
        Ces => "cs",
        Ell => "el",
        Heb => "he",
        Ind => "id",
        Vie => "vi",
        Tha => "th",
        Ron => "ro",
        Hun => "hu",
        Ben => "bn",
        Urd => "ur",
        Pes => "fa",
        Tam => "ta",
        Mar => "mr",
        Tel => "te",
        Guj => "gu",
        Kan => "kn",
        Mal => "ml",
        Pan => "pa",
        Bul => "bg",
        Srp => "sr",
        Hrv => "hr",
        Slk => "sk",
        Slv => "sl",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Cat => "ca",
        Afr => "af",
        other => other.code(),
    }
}
