//! SQL tokens.

use crate::catalog::SqlError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// Identifier or keyword (unquoted), or a backticked identifier (`quoted` = true).
    Ident {
        /// Text.
        text: String,
        /// Backticked.
        quoted: bool,
    },
    /// `'...'` or `"..."`.
    Str(String),
    /// Number text.
    Number(String),
    /// `@@name` system variable.
    SysVar(String),
    /// Punctuation or operator.
    Sym(&'static str),
}

impl Token {
    /// True if the token is the keyword `kw` (case-insensitive, unquoted).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Token::Ident { text, quoted: false } if text.eq_ignore_ascii_case(kw))
    }
}

const SYMBOLS: [&str; 17] = [
    "<=", ">=", "!=", "<>", "(", ")", ",", ";", ".", "=", "<", ">", "*", "+", "-", "/", "%",
];

/// Split SQL text into tokens.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut text = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(SqlError::new("Getting syntax error: unterminated string"));
                };
                if ch == '\\' {
                    if let Some(&next) = chars.get(i + 1) {
                        text.push(match next {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                }
                if ch == quote {
                    if chars.get(i + 1) == Some(&quote) {
                        text.push(quote);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                text.push(ch);
                i += 1;
            }
            tokens.push(Token::Str(text));
            continue;
        }
        if c == '`' {
            // BACKQUOTED_IDENTIFIER: '`' ( ~'`' | '``' )* '`'.
            i += 1;
            let mut text = String::new();
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (None, _) => {
                        return Err(SqlError::new(
                            "Getting syntax error: unterminated identifier",
                        ))
                    }
                    (Some('`'), Some('`')) => {
                        text.push('`');
                        i += 2;
                    }
                    (Some('`'), _) => {
                        i += 1;
                        break;
                    }
                    (Some(&ch), _) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Ident { text, quoted: true });
            continue;
        }
        if c == '@' {
            let mut j = i;
            while j < chars.len() && chars[j] == '@' {
                j += 1;
            }
            let start = j;
            while j < chars.len()
                && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '.')
            {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect();
            let name = name
                .trim_start_matches("session.")
                .trim_start_matches("global.")
                .to_string();
            tokens.push(Token::SysVar(name));
            i = j;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let save = i;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            // An identifier may start with digits (e.g. a table named 1abc): keep it simple.
            if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident {
                    text: chars[start..i].iter().collect(),
                    quoted: false,
                });
                continue;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Ident {
                text: chars[start..i].iter().collect(),
                quoted: false,
            });
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let Some(sym) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
            return Err(SqlError::new(format!(
                "Getting syntax error at line 1, column {i}. Detail message: Unexpected input '{c}'."
            )));
        };
        i += sym.chars().count();
        tokens.push(Token::Sym(sym));
    }
    Ok(tokens)
}
