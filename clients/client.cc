#include "clients/client.h"

#include <httplib.h>

#include "core/canonical_json.h"
#include "core/request_signing.h"

namespace bourse::clients {

struct Client::Impl {
  std::unique_ptr<httplib::Client> http;
};

std::string HttpReply::error_code() const {
  if (json.is_object() && json.contains("error") && json["error"].is_object() &&
      json["error"].contains("code") && json["error"]["code"].is_string()) {
    return json["error"]["code"].get<std::string>();
  }
  return "";
}

std::string HttpReply::error_message() const {
  if (json.is_object() && json.contains("error") && json["error"].is_object() &&
      json["error"].contains("message") && json["error"]["message"].is_string()) {
    return json["error"]["message"].get<std::string>();
  }
  return body;
}

core::Status StatusFromReply(const HttpReply& reply) {
  using core::StatusCode;
  static const std::pair<const char*, StatusCode> kNames[] = {
      {"invalid_argument", StatusCode::kInvalidArgument},
      {"not_found", StatusCode::kNotFound},
      {"already_exists", StatusCode::kAlreadyExists},
      {"failed_precondition", StatusCode::kFailedPrecondition},
      {"permission_denied", StatusCode::kPermissionDenied},
      {"unauthenticated", StatusCode::kUnauthenticated},
      {"resource_exhausted", StatusCode::kResourceExhausted},
      {"unavailable", StatusCode::kUnavailable},
      {"internal", StatusCode::kInternal},
      {"insufficient_funds", StatusCode::kInsufficientFunds}};
  std::string code = reply.error_code();
  std::string msg = "HTTP " + std::to_string(reply.status) + ": " + reply.error_message();
  for (const auto& [name, c] : kNames) {
    if (code == name) return core::Status(c, msg);
  }
  switch (reply.status) {
    case 400:
    case 413:
      return core::InvalidArgument(msg);
    case 401:
      return core::Unauthenticated(msg);
    case 403:
      return core::PermissionDenied(msg);
    case 404:
      return core::NotFound(msg);
    case 409:
      return core::FailedPrecondition(msg);
    case 402:
      return core::InsufficientFunds(msg);
    case 429:
      return core::ResourceExhausted(msg);
    case 503:
      return core::Unavailable(msg);
    default:
      return core::Internal(msg);
  }
}

namespace {

// Why a request got no reply, in words a user can act on.
std::string SendErrorText(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection refused or host unreachable";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "no reply (read failed or timed out)";
    case httplib::Error::Write:
      return "could not send the request";
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLServerVerification:
      return "TLS handshake failed";
    default:
      return httplib::to_string(e);
  }
}

}  // namespace

std::string EscapeSegment(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Client::Client(std::string url, std::optional<core::PrivateKey> key, ClientOptions options)
    : url_(std::move(url)),
      key_(std::move(key)),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>()) {
  impl_->http = std::make_unique<httplib::Client>(url_);
  httplib::Client& h = *impl_->http;
  h.set_keep_alive(true);
  h.set_url_encode(false);
  h.set_tcp_nodelay(true);
  h.set_connection_timeout(options_.connect_timeout_s, 0);
  h.set_read_timeout(options_.read_timeout_s, 0);
  h.set_write_timeout(options_.read_timeout_s, 0);
  if (!options_.ca_file.empty()) {
    h.set_ca_cert_path(options_.ca_file.c_str());
    h.enable_server_certificate_verification(true);
  } else {
    h.enable_server_certificate_verification(false);
  }
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

core::Result<HttpReply> Client::Send(std::string_view method, std::string_view path_with_query,
                                     std::string_view body, bool sign,
                                     const std::map<std::string, std::string>& extra_headers) {
  httplib::Headers headers;
  if (sign) {
    if (!key_) return core::FailedPrecondition("client: signing needs a key");
    const core::Clock& clock =
        options_.clock != nullptr ? *options_.clock : core::SystemClock::Get();
    core::SignedHeaders s =
        core::SignRequest(*key_, method, path_with_query, body, clock.NowSeconds());
    headers.emplace("Bourse-Key", s.key);
    headers.emplace("Bourse-Timestamp", s.timestamp);
    headers.emplace("Bourse-Nonce", s.nonce);
    headers.emplace("Bourse-Signature", s.signature);
  }
  for (const auto& [k, v] : extra_headers) {
    headers.erase(k);
    if (!v.empty()) headers.emplace(k, v);
  }
  httplib::Request req;
  req.method = std::string(method);
  req.path = std::string(path_with_query);
  req.headers = std::move(headers);
  req.body = std::string(body);
  if (!body.empty() && !req.has_header("Content-Type")) {
    req.set_header("Content-Type", "application/json");
  }
  httplib::Result res = impl_->http->send(req);
  if (!res) return core::Unavailable("cannot reach " + url_ + ": " + SendErrorText(res.error()));
  HttpReply reply;
  reply.status = res->status;
  reply.body = std::move(res->body);
  for (const auto& [k, v] : res->headers) reply.headers[k] = v;
  reply.json = nlohmann::json::parse(reply.body, nullptr, false);
  if (reply.json.is_discarded()) reply.json = nullptr;
  return reply;
}

core::Result<nlohmann::json> Client::CallImpl(std::string_view method, std::string_view path,
                                              const nlohmann::json& body, bool sign) {
  std::string text;
  if (!body.is_null()) text = body.dump();
  BOURSE_ASSIGN_OR_RETURN(HttpReply r, Send(method, path, text, sign));
  if (!r.ok()) return StatusFromReply(r);
  return std::move(r.json);
}

core::Result<nlohmann::json> Client::Call(std::string_view method, std::string_view path,
                                          const nlohmann::json& body) {
  return CallImpl(method, path, body, method != "GET");
}

core::Result<nlohmann::json> Client::CallSigned(std::string_view method, std::string_view path,
                                                const nlohmann::json& body) {
  return CallImpl(method, path, body, true);
}

}  // namespace bourse::clients
