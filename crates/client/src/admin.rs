//! The operator's client of the attestation server's v1 API: hosts, enrollment
//! credentials, aliases, policies, verdicts (bearer token). Every host name goes into the
//! path percent-encoded.

use std::time::Duration;

use crate::{ClientError, Http, TlsOptions, compute};

/// `/v1/hosts/{name}{rest}`, the name percent-encoded; `.` and `..` refused.
fn host_path(name: &str, rest: &str) -> Result<String, ClientError> {
    if !compute::addressable(name) {
        return Err(ClientError::Unaddressable(name.to_owned()));
    }
    Ok(format!("/v1/hosts/{}{rest}", compute::segment(name)))
}

/// An operator's client for the attestation server's v1 API (bearer token).
#[derive(Debug, Clone)]
pub struct AdminClient(Http);

impl AdminClient {
    /// A client for the server at `base_url` with `token`.
    ///
    /// # Errors
    /// `Tls` for unusable certificates.
    pub fn new(
        base_url: &str,
        tls: &TlsOptions,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Http::new(base_url, tls, timeout, token).map(Self)
    }

    /// `GET /v1/hosts`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn hosts(&self) -> Result<Vec<trustpool_api::v1::HostView>, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::GET, "/v1/hosts", None)
            .await
    }

    /// `POST /v1/hosts/{name}/re-enroll`: the host may enroll again (another TPM, named by its
    /// EK certificate; or the same TPM with a new AK, URL or certificate).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn allow_reenroll(
        &self,
        name: &str,
        request: &trustpool_api::v1::Reenroll,
    ) -> Result<trustpool_api::v1::EnrollmentGrant, ClientError> {
        self.0
            .send(
                reqwest::Method::POST,
                &host_path(name, "/re-enroll")?,
                Some(request),
            )
            .await
    }

    /// `POST /v1/hosts`: lets a new host enroll under a name; the credential, shown once.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn add_host(
        &self,
        request: &trustpool_api::v1::AddHost,
    ) -> Result<trustpool_api::v1::EnrollmentGrant, ClientError> {
        self.0
            .send(reqwest::Method::POST, "/v1/hosts", Some(request))
            .await
    }

    /// `POST /v1/hosts/{name}/clock-reset`: accepts a TPM clock rollback (after a
    /// `TPM2_Clear`); the next quote is the baseline.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn reset_clock(
        &self,
        name: &str,
    ) -> Result<trustpool_api::v1::HostView, ClientError> {
        self.0
            .send::<(), _>(
                reqwest::Method::POST,
                &host_path(name, "/clock-reset")?,
                None,
            )
            .await
    }

    /// `DELETE /v1/hosts/{name}/grant`: revokes the name's enrollment credential.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn revoke_grant(&self, name: &str) -> Result<(), ClientError> {
        self.0
            .send::<(), Option<serde_json::Value>>(
                reqwest::Method::DELETE,
                &host_path(name, "/grant")?,
                None,
            )
            .await
            .map(|_| ())
    }

    /// `PUT /v1/hosts/{name}/aliases`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn set_aliases(
        &self,
        name: &str,
        aliases: Vec<String>,
    ) -> Result<trustpool_api::v1::HostView, ClientError> {
        self.0
            .send(
                reqwest::Method::PUT,
                &host_path(name, "/aliases")?,
                Some(&trustpool_api::v1::SetAliases { aliases }),
            )
            .await
    }

    /// `GET /v1/hosts/{name}/evidence`: PCRs vs each accepted policy, the decoded log.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn evidence(&self, name: &str) -> Result<serde_json::Value, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::GET, &host_path(name, "/evidence")?, None)
            .await
    }

    /// `GET /v1/hosts/{name}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn host(&self, name: &str) -> Result<trustpool_api::v1::HostView, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::GET, &host_path(name, "")?, None)
            .await
    }

    /// `GET /v1/hosts/{name}/verdicts`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn verdicts(
        &self,
        name: &str,
    ) -> Result<Vec<trustpool_api::v1::VerdictView>, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::GET, &host_path(name, "/verdicts")?, None)
            .await
    }

    /// `PUT /v1/hosts/{name}/policies`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn set_policies(
        &self,
        name: &str,
        policies: Vec<String>,
    ) -> Result<trustpool_api::v1::HostView, ClientError> {
        self.0
            .send(
                reqwest::Method::PUT,
                &host_path(name, "/policies")?,
                Some(&trustpool_api::v1::AssignPolicies { policies }),
            )
            .await
    }

    /// `POST /v1/hosts/{name}/approve`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn approve(&self, name: &str) -> Result<trustpool_api::v1::HostView, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::POST, &host_path(name, "/approve")?, None)
            .await
    }

    /// `POST /v1/hosts/{name}/attest`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn attest(&self, name: &str) -> Result<trustpool_api::v1::VerdictView, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::POST, &host_path(name, "/attest")?, None)
            .await
    }

    /// `DELETE /v1/hosts/{name}`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn delete_host(&self, name: &str) -> Result<(), ClientError> {
        self.0
            .send::<(), Option<serde_json::Value>>(
                reqwest::Method::DELETE,
                &host_path(name, "")?,
                None,
            )
            .await
            .map(|_| ())
    }

    /// `GET /v1/policies` (documents as JSON).
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn policies(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        self.0
            .send::<(), _>(reqwest::Method::GET, "/v1/policies", None)
            .await
    }

    /// `POST /v1/policies`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn create_policy(
        &self,
        document: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.0
            .send(reqwest::Method::POST, "/v1/policies", Some(document))
            .await
    }

    /// `POST /v1/policies/import`.
    ///
    /// # Errors
    /// A `ClientError`.
    pub async fn import_policy(
        &self,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.0
            .send(reqwest::Method::POST, "/v1/policies/import", Some(request))
            .await
    }
}
