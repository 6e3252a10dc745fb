//! Builds from an image (`deis pull`, `POST /v2/apps/<app>/builds/`, gRPC `Builds.Create`):
//! imported into the platform registry first when registry-sync is configured, recorded as
//! given otherwise, then released. REST and gRPC both come through here, so they agree.

use std::sync::Arc;

use super::Controller;
use super::releases::NewBuild;
use crate::error::Result;
use crate::images::{ImageImporter, Progress};
use crate::model::{Build, Release, User};
use crate::validate;

/// An image build whose input and the caller's access were checked, ready to run
/// (see [`Controller::check_image_build`]).
#[derive(Debug)]
pub struct ImageBuild {
    caller: User,
    app: String,
    build: NewBuild,
    /// The app's private registry login, for the import.
    credentials: Option<(String, String)>,
}

impl Controller {
    /// Imports images through `images` before recording image builds (without one, image
    /// builds record the reference as given).
    pub fn with_images(mut self, images: Arc<dyn ImageImporter>) -> Self {
        self.images = Some(images);
        self
    }

    /// Checks an image build before anything is imported or recorded: the image reference,
    /// the Procfile and the caller's access to `app`. Transports that stream progress call
    /// this first so refusals are still plain errors.
    pub async fn check_image_build(
        &self,
        caller: &User,
        app: &str,
        build: NewBuild,
    ) -> Result<ImageBuild> {
        validate::image_reference(&build.image)?;
        validate::procfile(&build.procfile)?;
        // Also the access check: only users of the app see its registry credentials.
        let config = self.config_with_secrets(caller, app).await?;
        let credentials = match (
            config.registry.get("username"),
            config.registry.get("password"),
        ) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        Ok(ImageBuild {
            caller: caller.clone(),
            app: app.to_string(),
            build,
            credentials,
        })
    }

    /// Runs a checked image build: with an importer, copies the image into the platform
    /// registry (reporting `progress`) and records the copy, keeping only the Procfile of
    /// the request; without one, records the build as given.
    pub async fn run_image_build(
        &self,
        b: ImageBuild,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Build, Release)> {
        let Some(importer) = self.images.as_deref() else {
            return self.create_build(&b.caller, &b.app, b.build).await;
        };
        let imported = importer
            .import(&b.app, &b.build.image, b.credentials, progress)
            .await?;
        self.create_build(
            &b.caller,
            &b.app,
            NewBuild {
                image: imported.image,
                procfile: b.build.procfile,
                port: imported.port,
                kind: Some(crate::model::BuildKind::Image),
                ..Default::default()
            },
        )
        .await
    }

    /// Checks, then runs an image build ([`Self::check_image_build`], [`Self::run_image_build`]).
    pub async fn build_from_image(
        &self,
        caller: &User,
        app: &str,
        build: NewBuild,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Build, Release)> {
        let checked = self.check_image_build(caller, app, build).await?;
        self.run_image_build(checked, progress).await
    }
}
