//! The rules of people's accounts as the admin console keeps them: logins, the names others see,
//! and technicians' trades (工种). The password rule is the server's (`auth`), which hashes.

use crate::classification::Category;
use crate::estate::{PhoneFault, normalize_phone};

/// The longest login.
pub const MAX_LOGIN_CHARS: usize = 64;
/// The longest name others see (`王师傅`, `客服小李`).
pub const MAX_DISPLAY_NAME_CHARS: usize = 40;
/// The most trades one technician holds (there are ten built-in categories).
pub const MAX_TRADES: usize = 16;

/// What makes an account's field unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountFault {
    #[error("a login is 2 to {MAX_LOGIN_CHARS} characters of letters, digits and . _ - @")]
    BadLogin,
    #[error("a name is 1 to {MAX_DISPLAY_NAME_CHARS} characters, with no control characters")]
    BadName,
    #[error("`{0}` is not a category code (water_electric, elevator, … or custom:<code>)")]
    BadTrade(String),
    #[error("at most {MAX_TRADES} trades")]
    TooManyTrades,
    #[error("{0}")]
    Phone(PhoneFault),
}

impl AccountFault {
    pub fn label_zh(&self) -> String {
        match self {
            AccountFault::BadLogin => format!("账号为 2 到 {MAX_LOGIN_CHARS} 个字母、数字或 . _ - @"),
            AccountFault::BadName => format!("姓名为 1 到 {MAX_DISPLAY_NAME_CHARS} 个字符,不含控制字符"),
            AccountFault::BadTrade(code) => format!("`{code}` 不是工单类别"),
            AccountFault::TooManyTrades => format!("工种最多 {MAX_TRADES} 个"),
            AccountFault::Phone(fault) => fault.label_zh().to_owned(),
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            AccountFault::BadLogin => "login",
            AccountFault::BadName => "name",
            AccountFault::BadTrade(_) | AccountFault::TooManyTrades => "trades",
            AccountFault::Phone(_) => "phone",
        }
    }
}

/// A login as stored: trimmed; letters, digits and `. _ - @`, 2 to [`MAX_LOGIN_CHARS`].
pub fn check_login(raw: &str) -> Result<String, AccountFault> {
    let login = raw.trim();
    let count = login.chars().count();
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if !(2..=MAX_LOGIN_CHARS).contains(&count) || !login.chars().all(allowed) {
        return Err(AccountFault::BadLogin);
    }
    Ok(login.to_owned())
}

/// A display name as stored: trimmed, 1 to [`MAX_DISPLAY_NAME_CHARS`], no control characters.
pub fn check_display_name(raw: &str) -> Result<String, AccountFault> {
    let name = raw.trim();
    let count = name.chars().count();
    if !(1..=MAX_DISPLAY_NAME_CHARS).contains(&count) || name.chars().any(char::is_control) {
        return Err(AccountFault::BadName);
    }
    Ok(name.to_owned())
}

/// An account's phone as stored: [`normalize_phone`]'s digits; empty means none.
pub fn check_account_phone(raw: &str) -> Result<Option<String>, AccountFault> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    normalize_phone(raw).map(Some).map_err(AccountFault::Phone)
}

/// A technician's trades: category codes, each once, in the order given.
pub fn parse_trades(codes: &[String]) -> Result<Vec<Category>, AccountFault> {
    if codes.len() > MAX_TRADES {
        return Err(AccountFault::TooManyTrades);
    }
    let mut trades: Vec<Category> = Vec::with_capacity(codes.len());
    for code in codes {
        let trade =
            Category::from_code(code.trim()).map_err(|_| AccountFault::BadTrade(code.chars().take(40).collect()))?;
        if !trades.contains(&trade) {
            trades.push(trade);
        }
    }
    Ok(trades)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_short_words_without_spaces() {
        assert_eq!(check_login("  wang.shifu ").unwrap(), "wang.shifu");
        assert_eq!(check_login("李师傅01").unwrap(), "李师傅01");
        assert_eq!(check_login("x"), Err(AccountFault::BadLogin));
        assert_eq!(check_login("wang shifu"), Err(AccountFault::BadLogin));
        assert_eq!(check_login("a/b"), Err(AccountFault::BadLogin));
        assert_eq!(check_login(&"a".repeat(65)), Err(AccountFault::BadLogin));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_display_name(" 王师傅 ").unwrap(), "王师傅");
        assert_eq!(check_display_name("  "), Err(AccountFault::BadName));
        assert_eq!(check_display_name("王\u{7}"), Err(AccountFault::BadName));
        assert_eq!(check_display_name(&"王".repeat(41)), Err(AccountFault::BadName));
    }

    #[test]
    fn phones_are_digits_or_none() {
        assert_eq!(check_account_phone("138 0013 8000").unwrap().as_deref(), Some("13800138000"));
        assert_eq!(check_account_phone(" ").unwrap(), None);
        assert!(matches!(check_account_phone("12"), Err(AccountFault::Phone(_))));
    }

    #[test]
    fn trades_are_categories_each_once() {
        let trades = parse_trades(&["elevator".into(), "water_electric".into(), "elevator".into()]).unwrap();
        assert_eq!(trades, vec![Category::Elevator, Category::WaterElectric]);
        assert_eq!(parse_trades(&["plumbing".into()]), Err(AccountFault::BadTrade("plumbing".into())));
        assert_eq!(parse_trades(&vec!["elevator".to_owned(); 17]), Err(AccountFault::TooManyTrades));
        assert!(parse_trades(&["custom:boiler".into()]).is_ok());
    }
}
