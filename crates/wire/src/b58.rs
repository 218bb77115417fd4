//! Serde for keys, hashes and signatures as base-58 strings (what Solana's
//! JSON carries), through their `Display` and `FromStr`:
//! `#[serde(with = "crate::b58")]`.

use std::fmt::Display;
use std::str::FromStr;

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

pub fn serialize<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: FromStr,
    T::Err: Display,
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|e| D::Error::custom(format_args!("{text:?} is not valid base-58 here: {e}")))
}
