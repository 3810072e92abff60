// Route table: literal segments and `{name}` captures (see server.hpp).
#include <string_view>
#include <utility>

#include "net/server.hpp"

namespace mercato::net {
namespace {

// "/a/b/c" -> {"a", "b", "c"}; "/" -> {""}. Segments are compared exactly, so "/a/" and "/a"
// are different paths.
std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    out.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool isCapture(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::add(const std::string& method, const std::string& pattern, SyncHandler handler) {
  addAsync(method, pattern,
           [h = std::move(handler)](HttpRequest request, std::shared_ptr<ResponseWriter> writer) {
             writer->send(h(request));
           });
}

void Router::addAsync(const std::string& method, const std::string& pattern, AsyncHandler handler) {
  routes_.push_back(Route{method, splitPath(pattern), std::move(handler), nullptr});
}

void Router::addWebSocket(const std::string& pattern, WebSocketHandler handler) {
  // A GET without the upgrade reaches this handler: tell the client what the route expects.
  AsyncHandler plain = [](HttpRequest, std::shared_ptr<ResponseWriter> writer) {
    HttpResponse r = HttpResponse::error(426, "upgrade_required",
                                         "this endpoint speaks WebSocket: send Upgrade: websocket");
    r.headers["Upgrade"] = "websocket";
    writer->send(std::move(r));
  };
  routes_.push_back(Route{"GET", splitPath(pattern), std::move(plain), std::move(handler)});
}

const Router::Route* Router::find(const std::string& method, const std::string& path,
                                  std::map<std::string, std::string>& params,
                                  bool& pathKnown) const {
  const std::vector<std::string> segments = splitPath(path);
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> captured;
    bool matched = true;
    for (size_t i = 0; i < segments.size() && matched; ++i) {
      const std::string& want = route.segments[i];
      if (isCapture(want)) {
        if (segments[i].empty())
          matched = false;
        else
          captured[want.substr(1, want.size() - 2)] = segments[i];
      } else {
        matched = want == segments[i];
      }
    }
    if (!matched) continue;
    pathKnown = true;
    if (route.method == method) {
      params = std::move(captured);
      return &route;
    }
  }
  return nullptr;
}

Router::Match Router::match(const std::string& method, const std::string& path) const {
  Match result;
  if (const Route* route = find(method, path, result.params, result.pathKnown)) {
    result.handler = &route->handler;
  }
  return result;
}

Router::WebSocketMatch Router::matchWebSocket(const std::string& path) const {
  WebSocketMatch result;
  bool known = false;
  const Route* route = find("GET", path, result.params, known);
  if (route && route->webSocket) {
    result.handler = &route->webSocket;
  } else {
    result.params.clear();
  }
  return result;
}

}  // namespace mercato::net
