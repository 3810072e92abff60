// Request parsing shared by the server and the fuzz target (see request.hpp, beast_request.hpp).
#include <boost/beast/http.hpp>

#include "net/beast_request.hpp"

namespace mercato::net {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

std::string pathDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void configureParser(RequestParser& parser, const RequestLimits& limits) {
  parser.body_limit(limits.maxBodyBytes);
  const size_t headerLimit = std::min<size_t>(limits.maxHeaderBytes, UINT32_MAX);
  parser.header_limit(static_cast<std::uint32_t>(headerLimit));
}

std::optional<HttpResponse> checkHeaderLimits(const RequestParser& parser,
                                              const RequestLimits& limits) {
  const auto& fields = parser.get().base();
  const size_t count = static_cast<size_t>(std::distance(fields.begin(), fields.end()));
  if (count <= limits.maxHeaderCount) return std::nullopt;
  return HttpResponse::error(431, codeName(Code::kTooLarge),
                             "request has " + std::to_string(count) +
                                 " header fields; the limit is " +
                                 std::to_string(limits.maxHeaderCount));
}

std::optional<HttpResponse> responseForReadError(const boost::system::error_code& ec,
                                                 const RequestLimits& limits) {
  if (ec == http::error::body_limit) {
    return HttpResponse::error(
        413, codeName(Code::kTooLarge),
        "request body exceeds the limit of " + std::to_string(limits.maxBodyBytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return HttpResponse::error(
        431, codeName(Code::kTooLarge),
        "request header exceeds the limit of " + std::to_string(limits.maxHeaderBytes) + " bytes");
  }
  // The peer went away before or during a request: nobody to answer.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == http::error::need_more) {
    return std::nullopt;
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return HttpResponse::error(400, codeName(Code::kInvalidArgument),
                               "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;
}

Result<HttpRequest> toHttpRequest(RequestMessage&& message, std::string remoteAddress) {
  HttpRequest request;
  const std::string_view target = sv(message.target());
  if (target.empty() || target.front() != '/') {
    return invalidArgument("request target must be an absolute path such as /status, got '" +
                           std::string(target.substr(0, 200)) + "'");
  }
  request.method = std::string(message.method_string());
  request.target = std::string(target);
  const size_t q = target.find('?');
  request.path = pathDecode(target.substr(0, q));
  if (q != std::string_view::npos) request.query = parseQuery(target.substr(q + 1));
  for (const auto& field : message.base()) {
    std::string name(field.name_string());
    auto [it, inserted] = request.headers.emplace(name, std::string(field.value()));
    if (!inserted) {  // repeated fields combine into one comma-separated list (RFC 9110 5.3)
      it->second += ", ";
      it->second += sv(field.value());
    }
  }
  request.body = std::move(message.body());
  request.remoteAddress = std::move(remoteAddress);
  return request;
}

ParseOutcome parseRequest(std::string_view bytes, const RequestLimits& limits) {
  ParseOutcome out;
  RequestParser parser;
  configureParser(parser, limits);
  bool headerChecked = false;
  for (;;) {
    if (parser.is_header_done() && !headerChecked) {
      headerChecked = true;
      if (auto error = checkHeaderLimits(parser, limits)) {
        out.error = std::move(error);
        return out;
      }
    }
    if (parser.is_done()) break;
    if (bytes.empty()) return out;  // incomplete
    beast::error_code ec;
    const size_t n = parser.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
    out.consumed += n;
    bytes.remove_prefix(n);
    if (ec == http::error::need_more) {
      if (n == 0) return out;  // incomplete
      continue;
    }
    if (ec) {
      out.error = responseForReadError(ec, limits);
      if (!out.error) {
        out.error = HttpResponse::error(400, codeName(Code::kInvalidArgument),
                                        "malformed HTTP request: " + ec.message());
      }
      return out;
    }
  }
  auto request = toHttpRequest(parser.release(), "");
  if (request.isOk()) {
    out.request = std::move(request).value();
  } else {
    out.error = HttpResponse::error(request.status());
  }
  return out;
}

}  // namespace mercato::net
