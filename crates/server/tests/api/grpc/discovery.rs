//! What a client without the `.proto` finds: reflection and health.

use super::*;

/// Asks reflection, in the protocol version of module `$v`, for the
/// services and for the file descriptors that define `$symbol`.
macro_rules! reflect {
    ($v:ident, $ch:expr, $symbol:expr) => {{
        use tonic_reflection::pb::$v::ServerReflectionRequest;
        use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new($ch.clone());
        let mut ask = async |m: MessageRequest| {
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            };
            let mut answers = client
                .server_reflection_info(futures::stream::iter([request]))
                .await
                .unwrap()
                .into_inner();
            answers.message().await.unwrap().unwrap().message_response
        };
        let services: Vec<String> = match ask(MessageRequest::ListServices(String::new())).await {
            Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
            other => panic!("{other:?}"),
        };
        // As grpcurl does: the file that defines the symbol, then each
        // import it names that the answer did not already hold.
        let mut files: Vec<prost_types::FileDescriptorProto> = Vec::new();
        let mut asking = vec![MessageRequest::FileContainingSymbol($symbol.into())];
        while let Some(request) = asking.pop() {
            let got = match ask(request).await {
                Some(MessageResponse::FileDescriptorResponse(f)) => f.file_descriptor_proto,
                other => panic!("{other:?}"),
            };
            for bytes in got {
                let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
                if files.iter().all(|f| f.name() != file.name()) {
                    files.push(file);
                }
            }
            for file in &files {
                for import in &file.dependency {
                    if files.iter().all(|f| f.name() != import) {
                        asking.push(MessageRequest::FileByFilename(import.clone()));
                    }
                }
            }
        }
        (services, files)
    }};
}

/// A client with no `.proto`: it learns the services and messages through
/// reflection, builds its request from the descriptors and reads the answer
/// the same way; in both versions of the reflection protocol.
async fn a_client_without_the_proto_calls_through_reflection_case(app: &TestApp) {
    let ch = channel(app).await;
    for v1alpha in [true, false] {
        let (services, files) = if v1alpha {
            reflect!(v1alpha, ch, "settle.v1.CustomerService")
        } else {
            reflect!(v1, ch, "settle.v1.CustomerService")
        };
        for wanted in [
            "settle.v1.PaymentService",
            "settle.v1.EventService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(services.iter().any(|s| s == wanted), "{wanted} in {services:?}");
        }
        let set = prost_types::FileDescriptorSet { file: files };
        assert!(
            set.file.iter().any(|f| f.name() == "google/protobuf/struct.proto"),
            "imports included"
        );
        let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
        let service = pool.get_service_by_name("settle.v1.CustomerService").unwrap();
        let method = service.methods().find(|m| m.name() == "CreateCustomer").unwrap();
        let mut input = DynamicMessage::new(method.input());
        let name = format!("reflected-{v1alpha}");
        input.set_field_by_name("name", prost_reflect::Value::String(name.clone()));
        let path = format!("/{}/{}", service.full_name(), method.name());
        let bytes = raw_call(&ch, Some(&app.admin_key), &path, input.encode_to_vec())
            .await
            .unwrap();
        let output = DynamicMessage::decode(method.output(), bytes.as_slice()).unwrap();
        let id = output.get_field_by_name("id").unwrap().as_str().unwrap().to_owned();
        assert!(id.starts_with("cus_"), "{id}");
        assert_eq!(
            app.get(&format!("/v1/customers/{id}")).await.body["name"],
            name.as_str()
        );
    }
}
both!(
    a_client_without_the_proto_calls_through_reflection,
    a_client_without_the_proto_calls_through_reflection_case
);

async fn health_answers_serving_case(app: &TestApp) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(channel(app).await);
    let answer = health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);
}
both!(health_answers_serving, health_answers_serving_case);
