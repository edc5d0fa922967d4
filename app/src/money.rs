//! Money: integer micro-USD everywhere (1 USD = 1 000 000), never floats.

use crate::error::AppError;

pub const MICROS_PER_USD: i64 = 1_000_000;

/// The largest amount accepted as a limit: a billion dollars.
const MAX_USD: i64 = 1_000_000_000;

/// Parses a dollar amount as typed by a person (`500`, `12.5`, `$1,200.00`)
/// into micro-USD. At most 6 decimals; never negative.
pub fn parse_usd(field: &str, input: &str) -> Result<i64, AppError> {
    let invalid = || AppError::invalid(field, "Enter an amount in US dollars, such as 500 or 12.50.");
    let text: String =
        input.trim().trim_start_matches('$').chars().filter(|c| *c != ',' && *c != '_').collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    if fraction.len() > 6 {
        return Err(AppError::invalid(field, "Use at most 6 decimals."));
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
    if whole > MAX_USD {
        return Err(AppError::invalid(field, "That amount is too large."));
    }
    let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| invalid())?;
    Ok(whole * MICROS_PER_USD + fraction)
}

/// `$1,234.50`: cents always shown, fractions of a cent when there are some.
pub fn format_usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let whole = micros / MICROS_PER_USD as u64;
    let fraction = micros % MICROS_PER_USD as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut cents = format!("{fraction:06}");
    while cents.len() > 2 && cents.ends_with('0') {
        cents.pop();
    }
    format!("{sign}${grouped}.{cents}")
}

/// The cost of `tokens` at `micros_per_mtok` (micro-USD per million tokens), rounded up
/// so that usage is never billed below its price.
pub fn token_cost(tokens: i64, micros_per_mtok: i64) -> i64 {
    let product = i128::from(tokens.max(0)) * i128::from(micros_per_mtok.max(0));
    i64::try_from((product + 999_999) / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_to_micros() {
        assert_eq!(parse_usd("amount", "500").unwrap(), 500_000_000);
        assert_eq!(parse_usd("amount", " $1,200.50 ").unwrap(), 1_200_500_000);
        assert_eq!(parse_usd("amount", "0.000001").unwrap(), 1);
        assert_eq!(parse_usd("amount", ".5").unwrap(), 500_000);
        for bad in ["", "-5", "abc", "1.2.3", "0.0000001", "1e3", "99999999999"] {
            assert_eq!(parse_usd("amount", bad).unwrap_err().field(), Some("amount"), "{bad:?}");
        }
    }

    #[test]
    fn micros_format_as_dollars() {
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(format_usd(1_234_500_000), "$1,234.50");
        assert_eq!(format_usd(1_500), "$0.0015");
        assert_eq!(format_usd(-2_000_000), "-$2.00");
    }

    #[test]
    fn token_costs_round_up_to_the_micro_dollar() {
        assert_eq!(token_cost(1_000_000, 2_000_000), 2_000_000);
        assert_eq!(token_cost(1, 2_000_000), 2);
        assert_eq!(token_cost(1, 100_000), 1, "a fraction of a micro-dollar is billed as one");
        assert_eq!(token_cost(0, 2_000_000), 0);
    }
}
