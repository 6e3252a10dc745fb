//! `deis pull`: import an image into the platform registry, then build and release it.

use std::sync::Arc;

use super::Controller;
use super::releases::NewBuild;
use crate::error::{Error, Result};
use crate::images::{ImageImporter, Progress};
use crate::model::{Build, Release, User};
use crate::validate;

impl Controller {
    /// Imports images through `images` before recording image builds (without one, image
    /// builds record the reference as given).
    pub fn with_images(mut self, images: Arc<dyn ImageImporter>) -> Self {
        self.images = Some(images);
        self
    }

    /// True when image builds are imported into the platform registry first.
    pub fn imports_images(&self) -> bool {
        self.images.is_some()
    }

    /// Copies `image` into the platform registry (with the app's registry credentials),
    /// then records the build and releases it.
    pub async fn pull(
        &self,
        caller: &User,
        app: &str,
        image: &str,
        procfile: std::collections::BTreeMap<String, String>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(Build, Release)> {
        validate::image_reference(image)?;
        validate::procfile(&procfile)?;
        // Also the access check: only users of the app see its registry credentials.
        let config = self.get_config(caller, app).await?;
        let Some(importer) = self.images.as_deref() else {
            return Err(Error::Unavailable(
                "no registry is configured for this controller".into(),
            ));
        };
        let creds = match (
            config.registry.get("username"),
            config.registry.get("password"),
        ) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => None,
        };
        let imported = importer.import(app, image, creds, progress).await?;
        self.create_build(
            caller,
            app,
            NewBuild {
                image: imported.image,
                procfile,
                port: imported.port,
                ..Default::default()
            },
        )
        .await
    }
}
