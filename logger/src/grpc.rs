//! gRPC adapter: converts and delegates, no logic.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use workflow_proto::logger::v1::{
    DeleteRequest, DeleteResponse, FollowRequest, FollowResponse, InfoRequest, InfoResponse,
    SearchRequest, SearchResponse, ShipAck, ShipBatch, TailRequest, TailResponse,
    logger_server::Logger,
};

use crate::aggregator::Aggregator;
use crate::index::SearchQuery;

/// The daemon's gRPC service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Filled into `Info` answers.
    pub info: InfoResponse,
    /// The domain.
    pub aggregator: Aggregator,
    /// Cancelled when the daemon stops: open ship and follow streams end then.
    pub shutdown: tokio_util::sync::CancellationToken,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Logger for Service {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(self.info.clone()))
    }

    type ShipStream = BoxStream<ShipAck>;

    #[tracing::instrument(skip_all, fields(peer = ?request.remote_addr()))]
    async fn ship(
        &self,
        request: Request<Streaming<ShipBatch>>,
    ) -> Result<Response<Self::ShipStream>, Status> {
        let aggregator = self.aggregator.clone();
        let stop = self.shutdown.clone().cancelled_owned();
        let mut batches = Box::pin(request.into_inner().take_until(stop));
        let acks = async_stream(move |tx| async move {
            while let Some(batch) = batches.next().await {
                let result = match batch {
                    Ok(batch) => aggregator.ship(batch).await.map_err(Status::from),
                    Err(status) => Err(status),
                };
                let failed = result.is_err();
                if tx.send(result).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(acks))
    }

    #[tracing::instrument(skip_all, fields(app = %request.get_ref().app, lines = request.get_ref().lines))]
    async fn tail(&self, request: Request<TailRequest>) -> Result<Response<TailResponse>, Status> {
        let r = request.into_inner();
        let (records, next_cursor) = self
            .aggregator
            .tail_since(&r.app, r.lines as usize, r.since_unix_nanos)
            .await?;
        Ok(Response::new(TailResponse {
            records,
            next_cursor,
        }))
    }

    type FollowStream = BoxStream<FollowResponse>;

    #[tracing::instrument(skip_all, fields(app = %request.get_ref().app, from = request.get_ref().from_cursor))]
    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let r = request.into_inner();
        let stream = self
            .aggregator
            .follow_since(&r.app, r.from_cursor, r.since_unix_nanos)?;
        let stop = self.shutdown.clone().cancelled_owned();
        Ok(Response::new(Box::pin(
            stream
                .map(|chunk| {
                    chunk
                        .map(|records| FollowResponse { records })
                        .map_err(Status::from)
                })
                .take_until(stop),
        )))
    }

    #[tracing::instrument(skip_all, fields(app = %request.get_ref().app))]
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let r = request.into_inner();
        let offset = if r.page_token.is_empty() {
            0
        } else {
            r.page_token.parse::<usize>().map_err(|_| {
                Status::invalid_argument(format!("invalid page token {:?}", r.page_token))
            })?
        };
        let limit = if r.limit == 0 { 100 } else { r.limit as usize };
        let q = SearchQuery {
            app: r.app,
            query: r.query,
            since: (r.since_unix_nanos != 0).then_some(r.since_unix_nanos),
            until: (r.until_unix_nanos != 0).then_some(r.until_unix_nanos),
            process_type: (!r.process_type.is_empty()).then_some(r.process_type),
            limit,
            offset,
        };
        let (records, more) = self.aggregator.search(q).await?;
        let next_page_token = if more {
            (offset + limit.min(crate::aggregator::MAX_PAGE)).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(SearchResponse {
            records,
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(app = %request.get_ref().app))]
    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let lines_deleted = self.aggregator.delete(&request.into_inner().app).await?;
        Ok(Response::new(DeleteResponse { lines_deleted }))
    }
}

/// A stream fed by a task through a small channel.
fn async_stream<T, F, Fut>(f: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
