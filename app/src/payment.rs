//! Payment methods: what is checked before billing is activated, and the only
//! parts that are kept (a card's brand, last 4 digits and expiry; a marketplace
//! account's id). A full card number never reaches the database or the logs.

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Marketplace {
    Aws,
    Azure,
}

impl Marketplace {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Azure => "azure",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Aws => "AWS Marketplace",
            Self::Azure => "Azure Marketplace",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Aws, Self::Azure].into_iter().find(|m| m.as_str() == text.trim().to_ascii_lowercase())
    }
}

/// A payment method as it is kept and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentMethod {
    Card { brand: String, last4: String, exp_month: u32, exp_year: i32 },
    Marketplace { marketplace: Marketplace, account_id: String },
}

impl PaymentMethod {
    pub fn describe(&self) -> String {
        match self {
            Self::Card { brand, last4, exp_month, exp_year } => {
                format!("{brand} ending in {last4}, expires {exp_month:02}/{exp_year}")
            }
            Self::Marketplace { marketplace, account_id } => {
                format!("{} account {account_id}", marketplace.label())
            }
        }
    }
}

/// Checks a card (number by the Luhn rule, expiry not past at `today`) and
/// returns what may be kept of it.
pub fn card(number: &str, expiry: &str, today: chrono::NaiveDate) -> Result<PaymentMethod, AppError> {
    use chrono::Datelike;
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if !(12..=19).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(AppError::invalid("card_number", "A card number has 12 to 19 digits."));
    }
    if !luhn_valid(&digits) {
        return Err(AppError::invalid("card_number", "This card number is not valid: check the digits."));
    }
    let (month, year) = parse_expiry(expiry)?;
    if (year, month) < (today.year(), today.month()) {
        return Err(AppError::invalid("card_expiry", "This card has expired."));
    }
    if year > today.year() + 20 {
        return Err(AppError::invalid("card_expiry", "Check the expiry year."));
    }
    Ok(PaymentMethod::Card {
        brand: brand(&digits).to_string(),
        last4: digits[digits.len() - 4..].to_string(),
        exp_month: month,
        exp_year: year,
    })
}

/// A cloud marketplace account: an AWS account id has 12 digits, an Azure
/// subscription id is a UUID.
pub fn marketplace(marketplace: Marketplace, account_id: &str) -> Result<PaymentMethod, AppError> {
    let account_id = account_id.trim();
    let valid = match marketplace {
        Marketplace::Aws => account_id.len() == 12 && account_id.chars().all(|c| c.is_ascii_digit()),
        Marketplace::Azure => uuid::Uuid::parse_str(account_id).is_ok(),
    };
    if !valid {
        let expected = match marketplace {
            Marketplace::Aws => "An AWS account id has 12 digits.",
            Marketplace::Azure => "An Azure subscription id looks like 00000000-0000-0000-0000-000000000000.",
        };
        return Err(AppError::invalid("account_id", expected));
    }
    Ok(PaymentMethod::Marketplace { marketplace, account_id: account_id.to_ascii_lowercase() })
}

/// The Luhn checksum of a string of digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// `MM/YY` or `MM/YYYY`.
fn parse_expiry(text: &str) -> Result<(u32, i32), AppError> {
    let invalid = || AppError::invalid("card_expiry", "Enter the expiry as MM/YY.");
    let (month, year) = text.trim().split_once('/').ok_or_else(invalid)?;
    let month: u32 = month.trim().parse().map_err(|_| invalid())?;
    let year = year.trim();
    let year: i32 = match year.len() {
        2 => 2000 + year.parse::<i32>().map_err(|_| invalid())?,
        4 => year.parse().map_err(|_| invalid())?,
        _ => return Err(invalid()),
    };
    if !(1..=12).contains(&month) {
        return Err(invalid());
    }
    Ok((month, year))
}

fn brand(digits: &str) -> &'static str {
    let prefix = |n: usize| digits[..n].parse::<u32>().unwrap_or(0);
    match digits.as_bytes()[0] {
        b'4' => "Visa",
        b'3' if matches!(prefix(2), 34 | 37) => "American Express",
        b'5' if (51..=55).contains(&prefix(2)) => "Mastercard",
        b'2' if (2221..=2720).contains(&prefix(4)) => "Mastercard",
        b'6' if prefix(4) == 6011 || prefix(2) == 65 => "Discover",
        _ => "Card",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn cards_pass_luhn_and_keep_only_brand_last4_and_expiry() {
        let kept = card("4242 4242 4242 4242", "12/28", today()).unwrap();
        assert_eq!(
            kept,
            PaymentMethod::Card { brand: "Visa".into(), last4: "4242".into(), exp_month: 12, exp_year: 2028 }
        );
        assert_eq!(kept.describe(), "Visa ending in 4242, expires 12/2028");
        let brand_of = |n: &str| match card(n, "01/2030", today()).unwrap() {
            PaymentMethod::Card { brand, .. } => brand,
            _ => unreachable!(),
        };
        assert_eq!(brand_of("5555-5555-5555-4444"), "Mastercard");
        assert_eq!(brand_of("378282246310005"), "American Express");
        assert_eq!(brand_of("6011111111111117"), "Discover");
    }

    #[test]
    fn bad_cards_are_refused_with_the_field_at_fault() {
        let field = |n: &str, e: &str| card(n, e, today()).unwrap_err().field().map(str::to_string);
        assert_eq!(field("4242 4242 4242 4241", "12/28").as_deref(), Some("card_number"), "Luhn");
        assert_eq!(field("4242", "12/28").as_deref(), Some("card_number"), "too short");
        assert_eq!(field("4242x4242x4242x4242", "12/28").as_deref(), Some("card_number"));
        assert_eq!(field("4242424242424242", "10/26").as_deref(), Some("card_expiry"), "expired last month");
        assert_eq!(field("4242424242424242", "13/27").as_deref(), Some("card_expiry"));
        assert_eq!(field("4242424242424242", "1227").as_deref(), Some("card_expiry"));
        assert!(card("4242424242424242", "11/26", today()).is_ok(), "valid through its month");
    }

    #[test]
    fn marketplace_accounts_have_their_provider_shape() {
        assert!(marketplace(Marketplace::Aws, "123456789012").is_ok());
        assert!(marketplace(Marketplace::Aws, "12345").is_err());
        assert!(marketplace(Marketplace::Azure, "8f2b7c1e-3d4a-4b5c-9d6e-7f8a9b0c1d2e").is_ok());
        assert!(marketplace(Marketplace::Azure, "123456789012").is_err());
    }
}
