//! Splitting long text the way a channel requires.
//!
//! Providers cap one message (Twilio 1,600 characters, LINE 5,000, Telegram 4,096…). Longer
//! text goes out as several messages, cut at the last whitespace before the limit when there
//! is one, never inside a UTF-8 character.

/// Splits `text` into pieces of at most `max` characters (not bytes).
pub fn split(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        // Byte offset just past the `max`-th character.
        let hard = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        // A break right after the limit is the best cut of all; else the last one before it.
        let cut = if rest[hard..].starts_with(char::is_whitespace) {
            hard
        } else {
            rest[..hard].rfind(char::is_whitespace).filter(|&i| i > 0).unwrap_or(hard)
        };
        out.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split("hello", 10), vec!["hello"]);
        assert_eq!(split("", 10), vec![""]);
    }

    #[test]
    fn cuts_at_whitespace_within_the_limit() {
        assert_eq!(split("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        let long = "word ".repeat(1000);
        for piece in split(&long, 1600) {
            assert!(piece.chars().count() <= 1600);
        }
    }

    #[test]
    fn cuts_unbroken_text_hard_and_respects_characters() {
        assert_eq!(split("abcdefgh", 3), vec!["abc", "def", "gh"]);
        let emoji = "😀".repeat(5);
        assert_eq!(split(&emoji, 2), vec!["😀😀", "😀😀", "😀"]);
    }
}
