#include "runtime/runc/image/registry_client.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/strings.hpp"
#include "runtime/runc/image/digest.hpp"
#include "runtime/runc/image/manifest.hpp"

namespace mercato::runtime::image {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

struct Challenge {
  std::string scheme;  // lower-case: "bearer", "basic"
  std::map<std::string, std::string> params;
};

// Parses `Bearer realm="..",service="..",scope=".."`.
Challenge parseChallenge(std::string_view h) {
  Challenge c;
  size_t i = 0;
  while (i < h.size() && h[i] == ' ') ++i;
  size_t sp = h.find(' ', i);
  c.scheme = lower(std::string(h.substr(i, sp == h.npos ? h.npos : sp - i)));
  if (sp == h.npos) return c;
  i = sp + 1;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    size_t eq = h.find('=', i);
    if (eq == h.npos) break;
    std::string key = lower(std::string(h.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value += h[i++];
      }
      ++i;
    } else {
      size_t end = h.find(',', i);
      value = std::string(h.substr(i, end == h.npos ? h.npos : end - i));
      i = end == h.npos ? h.size() : end;
    }
    c.params[key] = value;
  }
  return c;
}

struct HttpReply {
  long status = 0;
  std::multimap<std::string, std::string> headers;  // lower-case names, last response only
  std::string body;                                 // non-2xx bodies, or 2xx when no sink
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string body;        // request body (POST/PUT) when uploadFile is empty
  std::string uploadFile;  // PUT this file as the body
  bool hasBody = false;
  bool streaming = false;  // stall timeout instead of a total timeout
  // Receives 2xx body bytes; returns false (and sets the status) to abort.
  std::function<bool(const char*, size_t)> sink;
  size_t maxBody = kMaxManifestBytes;
};

struct Transfer {
  HttpCall* call;
  HttpReply* reply;
  bool overflow = false;
  bool sinkFailed = false;
  FILE* upload = nullptr;
};

size_t onHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {  // a new response (after a redirect or 100-continue)
    t->reply->headers.clear();
    auto sp = line.find(' ');
    if (sp != line.npos)
      t->reply->status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != line.npos) {
    std::string name = lower(std::string(line.substr(0, colon)));
    std::string value(trimSpace(line.substr(colon + 1)));
    t->reply->headers.emplace(std::move(name), std::move(value));
  }
  return size * n;
}

size_t onWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  bool ok2xx = t->reply->status >= 200 && t->reply->status < 300;
  if (ok2xx && t->call->sink) {
    if (!t->call->sink(data, len)) {
      t->sinkFailed = true;
      return 0;
    }
    return len;
  }
  size_t limit = ok2xx ? t->call->maxBody : kMaxErrorBody;
  if (t->reply->body.size() + len > limit) {
    t->overflow = true;
    return 0;
  }
  t->reply->body.append(data, len);
  return len;
}

size_t onRead(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  return std::fread(buffer, 1, size * n, t->upload);
}

class CurlRegistryClient final : public RegistryClient {
 public:
  explicit CurlRegistryClient(RegistryClientConfig config) : config_(std::move(config)) {
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &lockShare);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &unlockShare);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  ~CurlRegistryClient() override { curl_share_cleanup(share_); }

  Result<ManifestResponse> getManifest(const Reference& ref) override {
    std::string selector = ref.manifestSelector();
    std::string what = "manifest " + ref.toString();
    HttpCall call;
    call.url = baseUrl(ref) + "/manifests/" + selector;
    call.headers.push_back("Accept: " + std::string(kOciIndex) + ", " + std::string(kOciManifest) +
                           ", " + std::string(kDockerManifestList) + ", " +
                           std::string(kDockerManifest));
    ASSIGN_OR_RETURN(HttpReply reply, send(ref, "pull", call, what));
    if (reply.status != 200) return httpError(reply, ref, what);
    ManifestResponse out;
    out.bytes = std::move(reply.body);
    out.digest = sha256Digest(out.bytes);
    if (!ref.digest.empty() && out.digest != ref.digest)
      return invalidArgument("registry " + ref.registry + " repository " + ref.repository +
                             ": manifest content hashes to " + out.digest + ", not the " +
                             ref.digest + " asked for (tampered or corrupt)");
    std::string header = reply.header("docker-content-digest");
    if (!header.empty() && header != out.digest && startsWith(header, "sha256:"))
      return invalidArgument("registry " + ref.registry + " repository " + ref.repository +
                             ": manifest " + selector + " hashes to " + out.digest +
                             " but Docker-Content-Digest says " + header);
    out.mediaType = detectManifestMediaType(reply.header("content-type"), out.bytes);
    return out;
  }

  Status fetchBlob(const Reference& repo, const std::string& digest, uint64_t expectedSize,
                   const std::string& destination, TransferProgress progress) override {
    RETURN_IF_ERROR(validateDigest(digest, "blob digest"));
    std::string what = "blob " + digest + " of " + repo.name();
    std::string tmpl = destination + ".partXXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
      return internalError("cannot create a temp file beside " + destination + ": " +
                           std::strerror(errno));
    std::string tmp = tmpl;
    ::fchmod(fd, 0644);
    Sha256 hasher;
    uint64_t received = 0;
    Status sinkStatus;
    HttpCall call;
    call.url = baseUrl(repo) + "/blobs/" + digest;
    call.streaming = true;
    call.sink = [&](const char* data, size_t len) {
      if (received + len > expectedSize) {
        sinkStatus = invalidArgument(what + ": registry sent more than the " +
                                     std::to_string(expectedSize) + " bytes the manifest declares");
        return false;
      }
      size_t off = 0;
      while (off < len) {
        ssize_t w = ::write(fd, data + off, len - off);
        if (w < 0) {
          if (errno == EINTR) continue;
          sinkStatus = internalError(what + ": cannot write " + tmp + ": " + std::strerror(errno));
          return false;
        }
        off += static_cast<size_t>(w);
      }
      hasher.update(data, len);
      received += len;
      if (progress) progress(received, expectedSize);
      return true;
    };
    auto cleanup = [&](Status st) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    };
    auto reply = send(repo, "pull", call, what);
    if (!sinkStatus.isOk()) return cleanup(sinkStatus);
    if (!reply.isOk()) return cleanup(reply.status());
    if (reply->status != 200) return cleanup(httpError(*reply, repo, what));
    if (received != expectedSize)
      return cleanup(invalidArgument(what + ": received " + std::to_string(received) +
                                     " bytes, the manifest declares " +
                                     std::to_string(expectedSize)));
    std::string got = hasher.finishDigest();
    if (got != digest)
      return cleanup(invalidArgument(what + " from registry " + repo.registry +
                                     ": digest mismatch, content hashes to " + got +
                                     " (tampered or corrupt blob)"));
    if (::fsync(fd) != 0) return cleanup(internalError(what + ": fsync failed"));
    ::close(fd);
    if (::rename(tmp.c_str(), destination.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return internalError(what + ": cannot rename into " + destination + ": " + std::strerror(e));
    }
    return Status::ok();
  }

  Result<bool> blobExists(const Reference& repo, const std::string& digest) override {
    RETURN_IF_ERROR(validateDigest(digest, "blob digest"));
    HttpCall call;
    call.method = "HEAD";
    call.url = baseUrl(repo) + "/blobs/" + digest;
    std::string what = "blob " + digest + " of " + repo.name();
    ASSIGN_OR_RETURN(HttpReply reply, send(repo, "pull", call, what));
    if (reply.status == 200) return true;
    if (reply.status == 404) return false;
    return httpError(reply, repo, what);
  }

  Status pushBlob(const Reference& repo, const std::string& digest,
                  const std::string& path) override {
    ASSIGN_OR_RETURN(bool exists, blobExists(repo, digest));
    if (exists) return Status::ok();
    std::string what = "upload of blob " + digest + " to " + repo.name();
    HttpCall start;
    start.method = "POST";
    start.url = baseUrl(repo) + "/blobs/uploads/";
    start.hasBody = true;
    ASSIGN_OR_RETURN(HttpReply started, send(repo, "pull,push", start, what));
    if (started.status != 202) return httpError(started, repo, what);
    std::string location = started.header("location");
    if (location.empty())
      return internalError("registry " + repo.registry + ": " + what +
                           ": upload started without a Location header");
    std::string url = resolveLocation(repo, location);
    url += (url.find('?') == std::string::npos ? "?" : "&");
    url += "digest=" + digest;  // "sha256:<hex>" needs no escaping beyond ':' which is allowed
    HttpCall put;
    put.method = "PUT";
    put.url = url;
    put.uploadFile = path;
    put.streaming = true;
    put.headers.push_back("Content-Type: application/octet-stream");
    ASSIGN_OR_RETURN(HttpReply done, send(repo, "pull,push", put, what));
    if (done.status != 201) return httpError(done, repo, what);
    return Status::ok();
  }

  Result<std::string> pushManifest(const Reference& repo, const std::string& tag,
                                   const std::string& mediaType,
                                   const std::string& bytes) override {
    std::string digest = sha256Digest(bytes);
    std::string selector = tag.empty() ? digest : tag;
    std::string what = "push of manifest " + repo.name() + ":" + selector;
    HttpCall put;
    put.method = "PUT";
    put.url = baseUrl(repo) + "/manifests/" + selector;
    put.body = bytes;
    put.hasBody = true;
    put.headers.push_back("Content-Type: " + mediaType);
    ASSIGN_OR_RETURN(HttpReply reply, send(repo, "pull,push", put, what));
    if (reply.status != 201 && reply.status != 200) return httpError(reply, repo, what);
    std::string header = reply.header("docker-content-digest");
    if (!header.empty() && header != digest)
      return internalError("registry " + repo.registry + ": " + what + ": registry computed " +
                           header + " but the manifest hashes to " + digest);
    return digest;
  }

  uint64_t requestCount() const override { return requests_.load(); }

 private:
  static void lockShare(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<CurlRegistryClient*>(user)->shareLocks_[data % kLocks].lock();
  }
  static void unlockShare(CURL*, curl_lock_data data, void* user) {
    static_cast<CurlRegistryClient*>(user)->shareLocks_[data % kLocks].unlock();
  }

  std::string scheme(const Reference& ref) const {
    return registryScheme(ref.registry, config_.insecureRegistries);
  }
  std::string origin(const Reference& ref) const { return scheme(ref) + "://" + ref.apiHost(); }
  std::string baseUrl(const Reference& ref) const { return origin(ref) + "/v2/" + ref.repository; }
  std::string resolveLocation(const Reference& ref, const std::string& location) const {
    if (startsWith(location, "http://") || startsWith(location, "https://")) return location;
    if (startsWith(location, "/")) return origin(ref) + location;
    return baseUrl(ref) + "/blobs/uploads/" + location;
  }

  const RegistryCredentials* credentialsFor(const Reference& ref) const {
    auto it = config_.credentials.find(ref.registry);
    if (it == config_.credentials.end()) it = config_.credentials.find(ref.apiHost());
    return it == config_.credentials.end() ? nullptr : &it->second;
  }

  Status httpError(const HttpReply& reply, const Reference& ref, const std::string& what) const {
    std::string detail;
    nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
      for (const auto& e : j["errors"]) {
        if (!e.is_object()) continue;
        if (!detail.empty()) detail += "; ";
        if (e.contains("code") && e["code"].is_string()) detail += e["code"].get<std::string>();
        if (e.contains("message") && e["message"].is_string())
          detail += ": " + e["message"].get<std::string>();
      }
    }
    if (detail.empty() && !reply.body.empty() && reply.body.size() < 300) detail = reply.body;
    std::string msg = "registry " + ref.registry + ": " + what + ": HTTP " +
                      std::to_string(reply.status) + (detail.empty() ? "" : " (" + detail + ")");
    switch (reply.status) {
      case 401:
        return unauthenticated(msg);
      case 403:
        return permissionDenied(msg);
      case 404:
        return notFound(msg);
      case 429:
        return resourceExhausted(msg);
      case 400:
        return invalidArgument(msg);
      default:
        return reply.status >= 500 ? unavailable(msg) : internalError(msg);
    }
  }

  // One HTTP exchange, no auth logic.
  Result<HttpReply> perform(HttpCall& call, const std::string& authHeader,
                            const RegistryCredentials* userpwd, const std::string& what) {
    CURL* h = curl_easy_init();
    if (!h) return internalError("curl_easy_init failed");
    struct Guard {
      CURL* h;
      curl_slist* headers = nullptr;
      FILE* f = nullptr;
      ~Guard() {
        curl_slist_free_all(headers);
        if (f) std::fclose(f);
        curl_easy_cleanup(h);
      }
    } guard{h};
    HttpReply reply;
    Transfer t{&call, &reply};
    for (const auto& hd : call.headers)
      guard.headers = curl_slist_append(guard.headers, hd.c_str());
    if (!authHeader.empty())
      guard.headers = curl_slist_append(guard.headers, ("Authorization: " + authHeader).c_str());
    guard.headers = curl_slist_append(guard.headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, call.url.c_str());
    curl_easy_setopt(h, CURLOPT_SHARE, share_);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, config_.userAgent.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, guard.headers);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    if (call.streaming) {
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                       std::max(1L, static_cast<long>(config_.timeout.count() / 1000)));
    } else {
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &onWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    if (userpwd) {
      curl_easy_setopt(h, CURLOPT_USERNAME, userpwd->username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, userpwd->password.c_str());
      curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    }
    if (call.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!call.uploadFile.empty()) {
      guard.f = std::fopen(call.uploadFile.c_str(), "rb");
      if (!guard.f)
        return internalError(what + ": cannot open " + call.uploadFile + ": " +
                             std::strerror(errno));
      struct stat st {};
      ::fstat(fileno(guard.f), &st);
      t.upload = guard.f;
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, &onRead);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
      if (call.method != "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    } else if (call.hasBody) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, call.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
      if (call.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    } else if (call.method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    }
    ++requests_;
    CURLcode rc = curl_easy_perform(h);
    long redirects = 0;
    curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
    requests_ += static_cast<uint64_t>(redirects);
    if (rc != CURLE_OK) {
      if (t.sinkFailed) return internalError(what + ": aborted");  // caller has the real status
      if (t.overflow)
        return tooLarge(what + ": response larger than " + std::to_string(call.maxBody) + " bytes");
      std::string msg = what + ": " + curl_easy_strerror(rc) + " (" + call.url + ")";
      if (rc == CURLE_OPERATION_TIMEDOUT) return deadlineExceeded(msg);
      return unavailable(msg);
    }
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    reply.status = code;
    return reply;
  }

  // perform() plus the auth dance: a cached Authorization header for (registry, scope) is sent
  // up front; a 401 challenge gets a token or basic credentials and one retry.
  Result<HttpReply> send(const Reference& ref, const std::string& actions, HttpCall call,
                         const std::string& what) {
    std::string scope = "repository:" + ref.repository + ":" + actions;
    std::string key = ref.registry + " " + scope;
    std::string auth;
    {
      std::lock_guard lock(mu_);
      if (auto it = authCache_.find(key); it != authCache_.end())
        auth = it->second;
      else if (auto b = basicHosts_.find(ref.registry); b != basicHosts_.end())
        auth = b->second;
    }
    ASSIGN_OR_RETURN(HttpReply reply, perform(call, auth, nullptr, what));
    if (reply.status != 401) return reply;
    std::string header = reply.header("www-authenticate");
    Challenge ch = parseChallenge(header);
    const RegistryCredentials* creds = credentialsFor(ref);
    if (ch.scheme == "basic") {
      if (!creds)
        return unauthenticated("registry " + ref.registry + ": " + what +
                               ": registry asks for Basic credentials and none are configured "
                               "for " +
                               ref.registry);
      auth = "Basic " + base64(creds->username + ":" + creds->password);
      std::lock_guard lock(mu_);
      basicHosts_[ref.registry] = auth;
    } else if (ch.scheme == "bearer") {
      std::string tokenScope = ch.params.count("scope") ? ch.params["scope"] : scope;
      ASSIGN_OR_RETURN(std::string token, fetchToken(ref, ch, tokenScope, creds, what));
      auth = "Bearer " + token;
      std::lock_guard lock(mu_);
      authCache_[key] = auth;
    } else {
      return httpError(reply, ref, what + " (unsupported auth challenge \"" + header + "\")");
    }
    ASSIGN_OR_RETURN(HttpReply retried, perform(call, auth, nullptr, what));
    if (retried.status == 401) {
      std::lock_guard lock(mu_);
      authCache_.erase(key);
      basicHosts_.erase(ref.registry);
    }
    return retried;
  }

  Result<std::string> fetchToken(const Reference& ref, Challenge& ch, const std::string& scope,
                                 const RegistryCredentials* creds, const std::string& what) {
    std::string realm = ch.params["realm"];
    if (!startsWith(realm, "http://") && !startsWith(realm, "https://"))
      return unauthenticated("registry " + ref.registry + ": " + what +
                             ": Bearer challenge has no usable realm (\"" + realm + "\")");
    CURL* esc = curl_easy_init();
    auto escape = [&](const std::string& s) {
      char* e = curl_easy_escape(esc, s.c_str(), static_cast<int>(s.size()));
      std::string out(e ? e : "");
      curl_free(e);
      return out;
    };
    std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
    bool first = true;
    if (ch.params.count("service")) {
      url += "service=" + escape(ch.params["service"]);
      first = false;
    }
    if (!scope.empty()) url += std::string(first ? "" : "&") + "scope=" + escape(scope);
    curl_easy_cleanup(esc);
    HttpCall call;
    call.url = url;
    ASSIGN_OR_RETURN(HttpReply reply, perform(call, "", creds, "token for " + what));
    if (reply.status != 200)
      return unauthenticated("registry " + ref.registry + ": " + what + ": token server " + realm +
                             " answered HTTP " + std::to_string(reply.status) +
                             (creds ? " for the configured credentials" : " (anonymous)"));
    nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, false);
    std::string token;
    if (j.is_object()) {
      if (j.contains("token") && j["token"].is_string())
        token = j["token"].get<std::string>();
      else if (j.contains("access_token") && j["access_token"].is_string())
        token = j["access_token"].get<std::string>();
    }
    if (token.empty())
      return unauthenticated("registry " + ref.registry + ": " + what + ": token server " + realm +
                             " returned no token");
    return token;
  }

  static constexpr size_t kLocks = 8;
  RegistryClientConfig config_;
  CURLSH* share_ = nullptr;
  std::array<std::mutex, kLocks> shareLocks_;
  std::atomic<uint64_t> requests_{0};
  std::mutex mu_;
  std::map<std::string, std::string> authCache_;   // "registry scope" → "Bearer ..."
  std::map<std::string, std::string> basicHosts_;  // registry → "Basic ..."
};

}  // namespace

Result<std::unique_ptr<RegistryClient>> RegistryClient::create(RegistryClientConfig config) {
  static std::once_flag once;
  static CURLcode initRc = CURLE_OK;
  std::call_once(once, [] { initRc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (initRc != CURLE_OK)
    return internalError(std::string("curl_global_init failed: ") + curl_easy_strerror(initRc));
  if (config.timeout.count() <= 0) return invalidArgument("registry client: timeout must be > 0");
  return std::unique_ptr<RegistryClient>(new CurlRegistryClient(std::move(config)));
}

}  // namespace mercato::runtime::image
