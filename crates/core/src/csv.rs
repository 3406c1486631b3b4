//! CSV cells as the platform exports them: quoted when they must be, and never read by a
//! spreadsheet as a formula (OWASP "CSV injection": a text cell that starts with
//! `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`; numbers stay).

use std::borrow::Cow;

/// `text` made safe to open in a spreadsheet.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.parse::<f64>().is_err() {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// One cell of a CSV line: neutralised, then quoted if it holds a comma, a quote or a
/// line break.
pub fn cell(text: &str) -> String {
    let safe = neutralise(text);
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_numbers_stay() {
        for (input, out) in [
            (
                "=HYPERLINK(\"http://evil.example\",\"x\")",
                "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"",
            ),
            ("+1+2", "'+1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-cmd", "'-cmd"),
            ("\tx", "'\tx"),
            ("-3.5", "-3.5"),
            ("+2", "+2"),
            ("王小明", "王小明"),
            ("a,b", "\"a,b\""),
            ("", ""),
        ] {
            assert_eq!(cell(input), out, "{input:?}");
        }
    }
}
