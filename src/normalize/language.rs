//! The article's language: from a `lang` attribute, or detected in its text (whatlang).

/// The primary subtag of a `lang` attribute (`en-US` → `en`), if it looks like a language.
pub fn primary_language(lang: &str) -> Option<String> {
    let primary = lang.trim().split(['-', '_']).next()?;
    ((2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic()))
        .then(|| primary.to_ascii_lowercase())
}

/// Detects the language of title and body (first 2,000 characters), as ISO 639-1.
pub fn detect(title: &str, body: &str) -> Option<String> {
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
