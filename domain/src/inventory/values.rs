//! The values an inventory item is described by: category, status, condition, authentication,
//! photos, watch and handbag details, and how a consignor is paid.

use crate::Money;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Watch,
    Handbag,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Watch => "WATCH",
            Self::Handbag => "HANDBAG",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AcquisitionSource {
    Purchase,
    TradeIn,
    Consignment,
    MemoIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ItemStatus {
    InStock,
    Reserved,
    OnMemo,
    InService,
    Sold,
    Returned,
    ReturnedToConsignor,
    Archived,
}

impl ItemStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InStock => "IN_STOCK",
            Self::Reserved => "RESERVED",
            Self::OnMemo => "ON_MEMO",
            Self::InService => "IN_SERVICE",
            Self::Sold => "SOLD",
            Self::Returned => "RETURNED",
            Self::ReturnedToConsignor => "RETURNED_TO_CONSIGNOR",
            Self::Archived => "ARCHIVED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConditionGrade {
    New,
    Unworn,
    Excellent,
    VeryGood,
    Good,
    Fair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthenticationStatus {
    Pending,
    Authenticated,
    Failed,
}

/// Who authenticated the piece, how and when, with a certificate reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub status: AuthenticationStatus,
    pub method: Option<String>,
    pub by: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub certificate: Option<String>,
}

/// A photo's metadata; the bytes live in object storage under `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub key: String,
    pub order: u32,
    pub caption: Option<String>,
}

/// Watch specifics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchDetails {
    pub year: Option<i32>,
    pub dial: Option<String>,
    pub bezel: Option<String>,
    pub bracelet: Option<String>,
    pub has_box: bool,
    pub has_papers: bool,
}

/// Handbag specifics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandbagDetails {
    pub material: Option<String>,
    pub hardware: Option<String>,
    pub colour: Option<String>,
    pub date_stamp: Option<String>,
    /// Box, dustbag, lock, key, strap, papers…
    pub includes: Vec<String>,
}

/// How a consignor is paid when the piece sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsignorPayout {
    /// A fixed amount.
    Fixed { amount: Money },
    /// A share of the sale price, in basis points (1/100 of a percent).
    Percentage { basis_points: u32 },
}
