//! Flavors and extra specs, validated as Nova's API schemas do.

use std::collections::BTreeMap;

use trustpool_api::compute::flavor::{
    MAX_SPEC_VALUE, NewFlavor, TRUSTED_HOST_SPEC, valid_spec_key,
};

use super::{Service, ServiceError, new_uuid};
use crate::filters::TRUSTED_TRAIT;
use crate::store::FlavorRecord;

fn check_spec(key: &str, value: &str) -> Result<(), ServiceError> {
    if !valid_spec_key(key) {
        return Err(ServiceError::BadRequest(format!(
            "Invalid input for field/attribute extra_specs. Value: {key}. '{key}' does not match '^[a-zA-Z0-9-_:. ]{{1,255}}$'"
        )));
    }
    if value.chars().count() > MAX_SPEC_VALUE {
        return Err(ServiceError::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value is too long (over {MAX_SPEC_VALUE} characters)"
        )));
    }
    if key == TRUSTED_HOST_SPEC && !matches!(value, "trusted" | "untrusted" | "") {
        tracing::warn!(
            key,
            value,
            "a trust:trusted_host other than trusted/untrusted matches no host"
        );
    }
    if key == TRUSTED_TRAIT && !matches!(value, "required" | "forbidden") {
        return Err(ServiceError::BadRequest(format!(
            "{TRUSTED_TRAIT} must be required or forbidden, not {value:?}"
        )));
    }
    Ok(())
}

impl Service {
    /// Every flavor.
    #[must_use]
    pub fn flavors(&self) -> Vec<FlavorRecord> {
        self.read().flavors.values().cloned().collect()
    }

    /// A flavor by id or name.
    ///
    /// # Errors
    /// `NotFound` in Nova's words.
    pub fn flavor(&self, id: &str) -> Result<FlavorRecord, ServiceError> {
        self.read()
            .flavor(id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("Flavor {id} could not be found.")))
    }

    /// `POST /v2.1/flavors`.
    ///
    /// # Errors
    /// `BadRequest` for invalid fields, `Conflict` for a taken id or name.
    pub async fn create_flavor(&self, new: NewFlavor) -> Result<FlavorRecord, ServiceError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ServiceError::BadRequest(
                "Invalid input for field/attribute name.".to_owned(),
            ));
        }
        if new.ram == 0 || new.vcpus == 0 {
            return Err(ServiceError::BadRequest(
                "Invalid input for field/attribute flavor: ram and vcpus must be at least 1."
                    .to_owned(),
            ));
        }
        let id = match new.id.as_deref().map(str::trim) {
            None | Some("" | "auto") => new_uuid(),
            Some(id) if id.chars().count() <= 255 && valid_spec_key(id) => id.to_owned(),
            Some(id) => {
                return Err(ServiceError::BadRequest(format!(
                    "Invalid input for field/attribute id. Value: {id}."
                )));
            }
        };
        let record = FlavorRecord {
            id,
            name,
            ram_mb: new.ram,
            vcpus: new.vcpus,
            disk_gb: new.disk,
            ephemeral_gb: new.ephemeral.unwrap_or(0),
            swap_mb: new.swap.unwrap_or(0),
            rxtx_factor: new
                .rxtx_factor
                .filter(|f| *f > 0.0 && f.is_finite())
                .unwrap_or(1.0),
            is_public: new.is_public.unwrap_or(true),
            description: new.description,
            extra_specs: BTreeMap::new(),
        };
        let _w = self.writes.lock().await;
        {
            let state = self.read();
            if state.flavors.contains_key(&record.id) {
                return Err(ServiceError::Conflict(format!(
                    "Flavor with ID {} already exists.",
                    record.id
                )));
            }
            if state.flavors.values().any(|f| f.name == record.name) {
                return Err(ServiceError::Conflict(format!(
                    "Flavor with name {} already exists.",
                    record.name
                )));
            }
        }
        self.store.create_flavor(&record).await?;
        self.write()
            .flavors
            .insert(record.id.clone(), record.clone());
        Ok(record)
    }

    /// `DELETE /v2.1/flavors/{id}` (servers keep the copy they booted with).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_flavor(&self, id: &str) -> Result<(), ServiceError> {
        let _w = self.writes.lock().await;
        let flavor = self.flavor(id)?;
        self.store.delete_flavor(&flavor.id).await?;
        self.write().flavors.remove(&flavor.id);
        Ok(())
    }

    /// Merges (`POST os-extra_specs`) or sets one (`PUT os-extra_specs/{key}`).
    ///
    /// # Errors
    /// `NotFound`, or `BadRequest` for an invalid key or value.
    pub async fn set_extra_specs(
        &self,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ServiceError> {
        for (k, v) in &specs {
            check_spec(k, v)?;
        }
        let _w = self.writes.lock().await;
        let mut flavor = self.flavor(id)?;
        flavor.extra_specs.extend(specs);
        self.store
            .set_extra_specs(&flavor.id, &flavor.extra_specs)
            .await?;
        let merged = flavor.extra_specs.clone();
        self.write().flavors.insert(flavor.id.clone(), flavor);
        Ok(merged)
    }

    /// `DELETE os-extra_specs/{key}`.
    ///
    /// # Errors
    /// `NotFound` for the flavor or the key.
    pub async fn unset_extra_spec(&self, id: &str, key: &str) -> Result<(), ServiceError> {
        let _w = self.writes.lock().await;
        let mut flavor = self.flavor(id)?;
        if flavor.extra_specs.remove(key).is_none() {
            return Err(ServiceError::NotFound(format!(
                "Flavor {} has no extra specs with key {key}.",
                flavor.id
            )));
        }
        self.store
            .set_extra_specs(&flavor.id, &flavor.extra_specs)
            .await?;
        self.write().flavors.insert(flavor.id.clone(), flavor);
        Ok(())
    }
}
