//! prost's codec, except that a request that is not valid protobuf for its
//! method is the client's error: `INVALID_ARGUMENT` with SPEC's
//! `malformed_message` code, where tonic's own codec answers `INTERNAL`
//! (which tells a client the server is broken and invites it to retry).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::status::refusal;

/// The codec every generated service and client of `settle.v1` uses.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = Strict<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Strict(ProstDecoder::new(BufferSettings::default()))
    }
}

/// prost's decoder with the client's error for bytes that do not parse.
#[derive(Debug)]
pub struct Strict<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for Strict<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|e| {
            let message = format!("The message is not valid protobuf for this method: {}", e.message());
            refusal(400, "invalid_request_error", "malformed_message", &message, None, "")
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
