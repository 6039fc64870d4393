//! Money in integer minor units with an ISO 4217 currency. Never floats.
//!
//! Amounts cross the API as decimal strings (`"12500.00"`); [`Money::parse`] turns such a string
//! into minor units exactly, rejecting more fraction digits than the currency has.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 alphabetic code, upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

/// Active ISO 4217 currencies (List One, as in force in 2026; funds codes, precious metals and
/// withdrawn codes excluded) with their minor-unit exponent.
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

impl Currency {
    /// An active ISO 4217 code (what clients may use now).
    pub fn parse(code: &str) -> Result<Self, DomainError> {
        if !ISO_4217.iter().any(|(c, _)| *c == code) {
            return Err(DomainError::invalid("currency", "must be an active ISO 4217 currency code, such as USD"));
        }
        Self::from_stored(code)
    }

    /// Any three upper-case letters: for reading stored events, which must replay even if their
    /// currency has since been withdrawn.
    pub fn from_stored(code: &str) -> Result<Self, DomainError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::invalid("currency", "must be a three-letter upper-case ISO 4217 code"));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn code(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("currency code is ASCII")
    }

    /// Number of fraction digits in the currency's minor unit (2 for codes no longer listed).
    pub fn exponent(&self) -> u32 {
        ISO_4217.iter().find(|(c, _)| *c == self.code()).map_or(2, |(_, e)| *e)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_stored(&value)
    }
}
impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// An amount of money: minor units (cents) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a decimal string such as `"12500.00"` in `currency`. `field` names the input for
    /// the error.
    pub fn parse(field: &'static str, amount: &str, currency: &str) -> Result<Self, DomainError> {
        let currency = Currency::parse(currency)?;
        let exp = currency.exponent();
        let bad = |reason: &str| DomainError::invalid(field, reason.to_owned());
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("must be a decimal number such as \"12500.00\""));
        }
        if !frac_part.bytes().all(|b| b.is_ascii_digit()) || (digits.contains('.') && frac_part.is_empty()) {
            return Err(bad("must be a decimal number such as \"12500.00\""));
        }
        if frac_part.len() > exp as usize {
            return Err(bad(&format!("{currency} has at most {exp} fraction digits")));
        }
        let scale = 10i64.pow(exp);
        let int: i64 = int_part.parse().map_err(|_| bad("is too large"))?;
        let frac: i64 = if frac_part.is_empty() {
            0
        } else {
            let padded = format!("{frac_part:0<width$}", width = exp as usize);
            padded.parse().map_err(|_| bad("is too large"))?
        };
        let minor = int.checked_mul(scale).and_then(|v| v.checked_add(frac)).ok_or_else(|| bad("is too large"))?;
        Ok(Self { minor: if negative { -minor } else { minor }, currency })
    }

    /// The amount as a decimal string with exactly the currency's fraction digits.
    pub fn amount_string(&self) -> String {
        let exp = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = exp as usize)
    }

    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money, field: &'static str) -> Result<Money, DomainError> {
        self.same_currency(&other, field)?;
        let minor =
            self.minor.checked_add(other.minor).ok_or_else(|| DomainError::invalid(field, "amount overflows"))?;
        Ok(Money { minor, currency: self.currency })
    }

    pub fn same_currency(&self, other: &Money, field: &'static str) -> Result<(), DomainError> {
        if self.currency != other.currency {
            return Err(DomainError::CurrencyMismatch {
                field,
                expected: self.currency.to_string(),
                found: other.currency.to_string(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_decimal_strings_exactly() {
        let m = Money::parse("price", "12500.00", "USD").unwrap();
        assert_eq!(m.minor, 1_250_000);
        assert_eq!(Money::parse("price", "0.5", "EUR").unwrap().minor, 50);
        assert_eq!(Money::parse("price", "1200", "JPY").unwrap().minor, 1200);
        assert_eq!(Money::parse("price", "1.234", "KWD").unwrap().minor, 1234);
    }

    #[test]
    fn rejects_floats_garbage_and_excess_precision() {
        for bad in ["", ".5", "1.", "1e3", "12,500.00", "1.999", "abc", "--1", "1.2.3", " 1"] {
            assert!(Money::parse("price", bad, "USD").is_err(), "{bad:?} accepted");
        }
        assert!(Money::parse("price", "1.5", "JPY").is_err());
        assert!(Money::parse("price", "99999999999999999999", "USD").is_err());
        assert!(Money::parse("price", "1.00", "usd").is_err());
        assert!(Money::parse("price", "1.00", "US").is_err());
    }

    #[test]
    fn only_active_iso_4217_currencies_are_accepted_with_their_minor_units() {
        for bad in ["XYZ", "BTC", "usd", "US", "XAU", "BGN"] {
            assert_eq!(Currency::parse(bad).unwrap_err().code(), "INVALID", "{bad}");
        }
        assert_eq!(Money::parse("a", "1500", "JPY").unwrap().minor, 1500);
        assert!(Money::parse("a", "1500.5", "JPY").is_err(), "yen have no minor unit");
        assert_eq!(Money::parse("a", "1.234", "BHD").unwrap().minor, 1234);
        assert_eq!(Money::parse("a", "12500.00", "CHF").unwrap().minor, 1_250_000);
        // A stored event in a since-withdrawn currency still replays.
        let stored: Money = serde_json::from_str(r#"{"minor": 100, "currency": "BGN"}"#).unwrap();
        assert_eq!(stored.currency.code(), "BGN");
    }

    #[test]
    fn adding_different_currencies_is_rejected() {
        let usd = Money::parse("a", "1.00", "USD").unwrap();
        let eur = Money::parse("a", "1.00", "EUR").unwrap();
        assert_eq!(usd.checked_add(eur, "a").unwrap_err().code(), "CURRENCY_MISMATCH");
        assert_eq!(usd.checked_add(usd, "a").unwrap().minor, 200);
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_back_the_same_money(
            minor in any::<i64>().prop_filter("abs fits", |m| *m != i64::MIN),
            code in prop::sample::select(vec!["USD", "JPY", "KWD", "CHF"]),
        ) {
            let m = Money::from_minor(minor, Currency::parse(code).unwrap());
            let back = Money::parse("x", &m.amount_string(), code).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
