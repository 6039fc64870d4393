//! A customer of a store. Their name, email, phone and notes are personal data: every such field
//! is a [`Pii`] under the customer's `profile` key, so erasing the customer (destroying that key)
//! turns them into `Erased` in every replay while the stream stays valid.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::privacy::PrivacyRequestId;
use crate::values::{Email, PersonName, Phone, Text};
use crate::{CustomerId, DomainError, KeyClass, Pii, StoreId, UserId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod values;
pub use values::Tags;
use values::{nonempty, parse_birthday, parse_external_ids, parse_notes, parse_tags};

#[derive(Debug, Clone)]
pub struct RegisterCustomer {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub address: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// The staff member who looks after this customer.
    pub assigned_to: Option<UserId>,
    /// How the customer came to the store (walk-in, referral, lead API, Shopify…).
    pub source: Option<String>,
    /// Ids in other systems, e.g. `shopify` → `"7010423"`; personal data (they identify a person).
    pub external_ids: BTreeMap<String, String>,
}

/// `None` leaves a field as it is; `Some("")` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
    pub address: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub assigned_to: Option<UserId>,
    pub source: Option<String>,
    pub external_ids: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub enum CustomerCommand {
    Register(RegisterCustomer),
    Update(UpdateCustomer),
    /// On the duplicate: it is merged into `survivor` and takes no more changes.
    MergeInto {
        survivor: CustomerId,
    },
    /// On the survivor: it absorbs `merged` (its sales, consent and history stay where they are
    /// and remain replayable; read models point them to the survivor).
    Absorb {
        merged: CustomerId,
    },
    /// Right to be forgotten: issued by the erasure workflow once the subject's keys are
    /// destroyed. Read models purge every personal field of the customer on the event.
    Erase {
        request_id: PrivacyRequestId,
    },
}

/// A contact field that can be cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Email,
    Phone,
    Notes,
    Address,
    Birthday,
    AssignedTo,
    Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CustomerEvent {
    CustomerRegistered {
        customer_id: CustomerId,
        store_id: StoreId,
        name: Pii<String>,
        email: Option<Pii<String>>,
        phone: Option<Pii<String>>,
        notes: Option<Pii<String>>,
        tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birthday: Option<Pii<NaiveDate>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_to: Option<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        external_ids: BTreeMap<String, Pii<String>>,
    },
    /// Only the fields that changed are present; `cleared` lists fields set to nothing.
    CustomerDetailsUpdated {
        customer_id: CustomerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phone: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Tags>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cleared: Vec<ContactField>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<Pii<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        birthday: Option<Pii<NaiveDate>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_to: Option<UserId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_ids: Option<BTreeMap<String, Pii<String>>>,
    },
    CustomerMergedInto {
        customer_id: CustomerId,
        survivor_id: CustomerId,
    },
    CustomerAbsorbed {
        customer_id: CustomerId,
        merged_id: CustomerId,
    },
    /// The customer's personal data was erased under `request_id`: their profile and consent
    /// evidence keys are destroyed. Their sales, invoices and consent history stay.
    CustomerErased {
        customer_id: CustomerId,
        request_id: PrivacyRequestId,
    },
}

impl CustomerEvent {
    pub fn customer_id(&self) -> CustomerId {
        match self {
            Self::CustomerRegistered { customer_id, .. }
            | Self::CustomerDetailsUpdated { customer_id, .. }
            | Self::CustomerMergedInto { customer_id, .. }
            | Self::CustomerAbsorbed { customer_id, .. }
            | Self::CustomerErased { customer_id, .. } => *customer_id,
        }
    }
}

impl DomainEvent for CustomerEvent {
    fn data_subject(&self) -> Option<uuid::Uuid> {
        Some(self.customer_id().as_uuid())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Customer {
    pub state: Option<CustomerState>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerState {
    pub id: CustomerId,
    pub store_id: StoreId,
    pub name: Pii<String>,
    pub email: Option<Pii<String>>,
    pub phone: Option<Pii<String>>,
    pub notes: Option<Pii<String>>,
    pub tags: Vec<String>,
    pub address: Option<Pii<String>>,
    pub birthday: Option<Pii<NaiveDate>>,
    pub assigned_to: Option<UserId>,
    pub source: Option<String>,
    pub external_ids: BTreeMap<String, Pii<String>>,
    pub merged_into: Option<CustomerId>,
    /// Erased by a privacy request: takes no more changes.
    pub erased: bool,
}

impl Aggregate for Customer {
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    const KIND: &'static str = "customer";

    fn decide(&self, command: &CustomerCommand) -> Result<Vec<CustomerEvent>, DomainError> {
        match (command, &self.state) {
            (CustomerCommand::Register(_), Some(_)) => Err(DomainError::AlreadyExists { kind: Self::KIND }),
            (CustomerCommand::Register(c), None) => {
                let name = PersonName::parse(&c.name)?;
                let email = nonempty(&c.email).map(Email::parse).transpose()?;
                let phone = nonempty(&c.phone).map(Phone::parse).transpose()?;
                let notes = nonempty(&c.notes).map(parse_notes).transpose()?;
                let address = nonempty(&c.address).map(|a| Text::parse("address", a, 500)).transpose()?;
                let source = nonempty(&c.source).map(|s| Text::parse("source", s, 100)).transpose()?;
                Ok(vec![CustomerEvent::CustomerRegistered {
                    customer_id: c.customer_id,
                    store_id: c.store_id,
                    name: Pii::profile(name.as_str().to_owned()),
                    email: email.map(|e| Pii::profile(e.as_str().to_owned())),
                    phone: phone.map(|p| Pii::profile(p.as_str().to_owned())),
                    notes: notes.map(Pii::profile),
                    tags: Tags::new(parse_tags(&c.tags)?),
                    address: address.map(|a| Pii::profile(a.into_inner())),
                    birthday: c.birthday.map(parse_birthday).transpose()?.map(Pii::profile),
                    assigned_to: c.assigned_to,
                    source: source.map(Text::into_inner),
                    external_ids: parse_external_ids(&c.external_ids)?,
                }])
            }
            (_, None) => Err(DomainError::NotFound { kind: Self::KIND }),
            // Erasure is a right, merged or not; erasing twice changes nothing.
            (CustomerCommand::Erase { request_id }, Some(s)) => Ok(if s.erased {
                vec![]
            } else {
                vec![CustomerEvent::CustomerErased { customer_id: s.id, request_id: *request_id }]
            }),
            (_, Some(s)) if s.erased => Err(DomainError::Erased { kind: Self::KIND }),
            (_, Some(s)) if s.merged_into.is_some() => {
                Err(DomainError::IllegalTransition { action: "change a customer", state: "MERGED".into() })
            }
            (CustomerCommand::MergeInto { survivor }, Some(s)) => {
                if *survivor == s.id {
                    return Err(DomainError::invalid("survivorId", "a customer cannot be merged into itself"));
                }
                Ok(vec![CustomerEvent::CustomerMergedInto { customer_id: s.id, survivor_id: *survivor }])
            }
            (CustomerCommand::Absorb { merged }, Some(s)) => {
                if *merged == s.id {
                    return Err(DomainError::invalid("customerId", "a customer cannot absorb itself"));
                }
                Ok(vec![CustomerEvent::CustomerAbsorbed { customer_id: s.id, merged_id: *merged }])
            }
            (CustomerCommand::Update(u), Some(s)) => {
                if s.name.is_erased() {
                    return Err(DomainError::Erased { kind: Self::KIND });
                }
                let mut cleared = Vec::new();
                // A field changes when it is given and differs from the current clear value.
                let changed = |current: Option<&Pii<String>>, new: String| -> Option<Pii<String>> {
                    (current.and_then(Pii::clear) != Some(&new)).then(|| Pii::profile(new))
                };
                let name = match &u.name {
                    None => None,
                    Some(n) => changed(Some(&s.name), PersonName::parse(n)?.as_str().to_owned()),
                };
                let mut contact = |field: ContactField,
                                   raw: &Option<String>,
                                   current: &Option<Pii<String>>,
                                   parse: fn(&str) -> Result<String, DomainError>|
                 -> Result<Option<Pii<String>>, DomainError> {
                    match raw.as_deref().map(str::trim) {
                        None => Ok(None),
                        Some("") => {
                            if current.is_some() {
                                cleared.push(field);
                            }
                            Ok(None)
                        }
                        Some(v) => Ok(changed(current.as_ref(), parse(v)?)),
                    }
                };
                let email = contact(ContactField::Email, &u.email, &s.email, |v| {
                    Email::parse(v).map(|e| e.as_str().to_owned())
                })?;
                let phone = contact(ContactField::Phone, &u.phone, &s.phone, |v| {
                    Phone::parse(v).map(|p| p.as_str().to_owned())
                })?;
                let notes = contact(ContactField::Notes, &u.notes, &s.notes, parse_notes)?;
                let address = contact(ContactField::Address, &u.address, &s.address, |v| {
                    Text::parse("address", v, 500).map(Text::into_inner)
                })?;
                let tags = match &u.tags {
                    None => None,
                    Some(t) => Some(parse_tags(t)?).filter(|t| *t != s.tags).map(Tags::new),
                };
                let birthday = match u.birthday {
                    Some(b) if s.birthday.as_ref().and_then(Pii::clear) != Some(&b) => {
                        Some(Pii::profile(parse_birthday(b)?))
                    }
                    _ => None,
                };
                let assigned_to = u.assigned_to.filter(|a| s.assigned_to != Some(*a));
                let source = match u.source.as_deref().map(str::trim) {
                    None => None,
                    Some("") => {
                        if s.source.is_some() {
                            cleared.push(ContactField::Source);
                        }
                        None
                    }
                    Some(v) => {
                        Some(Text::parse("source", v, 100)?.into_inner()).filter(|v| s.source.as_ref() != Some(v))
                    }
                };
                let external_ids = match &u.external_ids {
                    None => None,
                    Some(ids) => {
                        let parsed = parse_external_ids(ids)?;
                        let same = parsed.len() == s.external_ids.len()
                            && parsed.iter().all(|(k, v)| s.external_ids.get(k).and_then(Pii::clear) == v.clear());
                        (!same).then_some(parsed)
                    }
                };
                if name.is_none()
                    && email.is_none()
                    && phone.is_none()
                    && notes.is_none()
                    && tags.is_none()
                    && cleared.is_empty()
                    && address.is_none()
                    && birthday.is_none()
                    && assigned_to.is_none()
                    && source.is_none()
                    && external_ids.is_none()
                {
                    return Ok(vec![]);
                }
                Ok(vec![CustomerEvent::CustomerDetailsUpdated {
                    customer_id: s.id,
                    name,
                    email,
                    phone,
                    notes,
                    tags,
                    cleared,
                    address,
                    birthday,
                    assigned_to,
                    source,
                    external_ids,
                }])
            }
        }
    }

    fn evolve(mut self, event: &CustomerEvent) -> Self {
        match event {
            CustomerEvent::CustomerRegistered {
                customer_id,
                store_id,
                name,
                email,
                phone,
                notes,
                tags,
                address,
                birthday,
                assigned_to,
                source,
                external_ids,
            } => {
                self.state = Some(CustomerState {
                    id: *customer_id,
                    store_id: *store_id,
                    name: name.clone(),
                    email: email.clone(),
                    phone: phone.clone(),
                    notes: notes.clone(),
                    tags: tags.values(),
                    address: address.clone(),
                    birthday: birthday.clone(),
                    assigned_to: *assigned_to,
                    source: source.clone(),
                    external_ids: external_ids.clone(),
                    merged_into: None,
                    erased: false,
                });
            }
            CustomerEvent::CustomerErased { .. } => {
                if let Some(s) = self.state.as_mut() {
                    let erased = Pii::Erased { class: KeyClass::Profile, at: None };
                    s.name = erased;
                    s.email = None;
                    s.phone = None;
                    s.notes = None;
                    s.tags.clear();
                    s.address = None;
                    s.birthday = None;
                    s.external_ids.clear();
                    s.erased = true;
                }
            }
            CustomerEvent::CustomerMergedInto { survivor_id, .. } => {
                if let Some(s) = self.state.as_mut() {
                    s.merged_into = Some(*survivor_id);
                }
            }
            CustomerEvent::CustomerAbsorbed { .. } => {}
            CustomerEvent::CustomerDetailsUpdated {
                name,
                email,
                phone,
                notes,
                tags,
                cleared,
                address,
                birthday,
                assigned_to,
                source,
                external_ids,
                ..
            } => {
                if let Some(s) = self.state.as_mut() {
                    if let Some(n) = name {
                        s.name = n.clone();
                    }
                    for (new, slot) in
                        [(email, &mut s.email), (phone, &mut s.phone), (notes, &mut s.notes), (address, &mut s.address)]
                    {
                        if let Some(v) = new {
                            *slot = Some(v.clone());
                        }
                    }
                    if let Some(t) = tags {
                        s.tags = t.values();
                    }
                    if let Some(b) = birthday {
                        s.birthday = Some(b.clone());
                    }
                    if let Some(a) = assigned_to {
                        s.assigned_to = Some(*a);
                    }
                    if let Some(src) = source {
                        s.source = Some(src.clone());
                    }
                    if let Some(ids) = external_ids {
                        s.external_ids = ids.clone();
                    }
                    for f in cleared {
                        match f {
                            ContactField::Email => s.email = None,
                            ContactField::Phone => s.phone = None,
                            ContactField::Notes => s.notes = None,
                            ContactField::Address => s.address = None,
                            ContactField::Birthday => s.birthday = None,
                            ContactField::AssignedTo => s.assigned_to = None,
                            ContactField::Source => s.source = None,
                        }
                    }
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;

    fn register() -> RegisterCustomer {
        RegisterCustomer {
            customer_id: CustomerId::from_uuid(uuid::Uuid::from_u128(7)),
            store_id: StoreId::from_uuid(uuid::Uuid::from_u128(8)),
            name: " Ann Lee ".into(),
            email: Some("ann@Example.com".into()),
            phone: None,
            notes: Some("".into()),
            tags: vec!["vip".into(), "vip".into(), "rolex".into()],
            address: None,
            birthday: None,
            assigned_to: None,
            source: Some("walk-in".into()),
            external_ids: BTreeMap::from([("Shopify".into(), "7010423".into())]),
        }
    }

    fn registered() -> CustomerEvent {
        let r = register();
        CustomerEvent::CustomerRegistered {
            customer_id: r.customer_id,
            store_id: r.store_id,
            name: Pii::profile("Ann Lee".into()),
            email: Some(Pii::profile("ann@example.com".into())),
            phone: None,
            notes: None,
            tags: Tags::new(vec!["vip".into(), "rolex".into()]),
            address: None,
            birthday: None,
            assigned_to: None,
            source: Some("walk-in".into()),
            external_ids: BTreeMap::from([("shopify".into(), Pii::profile("7010423".into()))]),
        }
    }

    #[test]
    fn registering_a_customer_marks_every_personal_field_as_profile_data() {
        let c = given::<Customer>(&[]).when(CustomerCommand::Register(register())).then_expect(&[registered()]);
        assert_eq!(c.state.unwrap().name.class(), KeyClass::Profile);
        assert_eq!(registered().data_subject(), Some(register().customer_id.as_uuid()));
    }

    #[test]
    fn invalid_email_is_rejected_on_the_email_field() {
        let mut r = register();
        r.email = Some("not-an-email".into());
        let e = given::<Customer>(&[]).when(CustomerCommand::Register(r)).then_reject("INVALID");
        assert_eq!(e.field(), Some("email"));
    }

    #[test]
    fn updating_records_only_changed_fields_and_clears() {
        let u = UpdateCustomer {
            name: Some("Ann Lee".into()),
            email: Some("".into()),
            phone: Some("+1 212 555 0100".into()),
            ..Default::default()
        };
        let c = given::<Customer>(&[registered()]).when(CustomerCommand::Update(u)).then_expect(&[
            CustomerEvent::CustomerDetailsUpdated {
                customer_id: register().customer_id,
                name: None,
                email: None,
                phone: Some(Pii::profile("+1 212 555 0100".into())),
                notes: None,
                tags: None,
                cleared: vec![ContactField::Email],
                address: None,
                birthday: None,
                assigned_to: None,
                source: None,
                external_ids: None,
            },
        ]);
        let s = c.state.unwrap();
        assert!(s.email.is_none());
        assert_eq!(s.phone.unwrap().clear().unwrap(), "+1 212 555 0100");
    }

    #[test]
    fn an_update_that_changes_nothing_records_nothing() {
        let u = UpdateCustomer {
            name: Some("Ann Lee".into()),
            tags: Some(vec!["vip".into(), "rolex".into()]),
            ..Default::default()
        };
        given::<Customer>(&[registered()]).when(CustomerCommand::Update(u)).then_expect(&[]);
    }

    #[test]
    fn an_erased_customer_cannot_be_updated_but_still_replays() {
        let mut erased = registered();
        if let CustomerEvent::CustomerRegistered { name, email, .. } = &mut erased {
            *name = Pii::Erased { class: KeyClass::Profile, at: None };
            *email = Some(Pii::Erased { class: KeyClass::Profile, at: None });
        }
        let u = UpdateCustomer { name: Some("Someone".into()), ..Default::default() };
        given::<Customer>(&[erased]).when(CustomerCommand::Update(u)).then_reject("ERASED");
    }

    #[test]
    fn updating_an_unknown_customer_is_rejected() {
        given::<Customer>(&[]).when(CustomerCommand::Update(UpdateCustomer::default())).then_reject("NOT_FOUND");
    }

    #[test]
    fn external_ids_and_birthdays_are_personal_data() {
        let e = given::<Customer>(&[]).when(CustomerCommand::Register(register())).events();
        let CustomerEvent::CustomerRegistered { external_ids, .. } = &e[0] else { panic!() };
        assert_eq!(external_ids["shopify"].class(), KeyClass::Profile);
        let mut r = register();
        r.birthday = Some(NaiveDate::from_ymd_opt(1850, 1, 1).unwrap());
        given::<Customer>(&[]).when(CustomerCommand::Register(r)).then_reject("INVALID");
    }

    #[test]
    fn a_merged_customer_points_to_the_survivor_and_takes_no_more_changes() {
        let survivor = CustomerId::from_uuid(uuid::Uuid::from_u128(99));
        let merged = given::<Customer>(&[registered()]).when(CustomerCommand::MergeInto { survivor }).then_expect(&[
            CustomerEvent::CustomerMergedInto { customer_id: register().customer_id, survivor_id: survivor },
        ]);
        assert_eq!(merged.state.as_ref().unwrap().merged_into, Some(survivor));
        let history = [
            registered(),
            CustomerEvent::CustomerMergedInto { customer_id: register().customer_id, survivor_id: survivor },
        ];
        let u = UpdateCustomer { name: Some("New".into()), ..Default::default() };
        given::<Customer>(&history).when(CustomerCommand::Update(u)).then_reject("ILLEGAL_TRANSITION");
        given::<Customer>(&history).when(CustomerCommand::MergeInto { survivor }).then_reject("ILLEGAL_TRANSITION");
        given::<Customer>(&[registered()])
            .when(CustomerCommand::MergeInto { survivor: register().customer_id })
            .then_reject("INVALID");
    }

    #[test]
    fn an_erased_customer_takes_no_more_changes_and_erasing_again_changes_nothing() {
        let request_id = PrivacyRequestId::from_uuid(uuid::Uuid::from_u128(99));
        let erased = given::<Customer>(&[registered()])
            .when(CustomerCommand::Erase { request_id })
            .then_expect(&[CustomerEvent::CustomerErased { customer_id: register().customer_id, request_id }]);
        let state = erased.state.as_ref().unwrap();
        assert!(state.erased && state.name.is_erased() && state.email.is_none() && state.tags.is_empty());
        let history = [registered(), CustomerEvent::CustomerErased { customer_id: register().customer_id, request_id }];
        given::<Customer>(&history).when(CustomerCommand::Erase { request_id }).then_expect(&[]);
        given::<Customer>(&history)
            .when(CustomerCommand::Update(UpdateCustomer { notes: Some("back again".into()), ..Default::default() }))
            .then_reject("ERASED");
        given::<Customer>(&history)
            .when(CustomerCommand::MergeInto { survivor: CustomerId::from_uuid(uuid::Uuid::from_u128(5)) })
            .then_reject("ERASED");
    }
}
