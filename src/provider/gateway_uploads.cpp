// Provider, part 2b: resumable bundle uploads on the gateway (docs/protocols.md, "Uploads"):
// create, resume, append chunks, then deploy the finished upload through intake.
#include <sodium.h>

#include <filesystem>
#include <fstream>

#include "common/strings.hpp"
#include "provider/provider.hpp"

namespace mercato::provider {

namespace fs = std::filesystem;
using net::HttpRequest;
using net::HttpResponse;
using net::ResponseWriter;
using nlohmann::json;

namespace {

constexpr size_t kMaxChunk = 4u << 20;

std::string randomId() {
  unsigned char raw[12];
  randombytes_buf(raw, sizeof raw);
  return toHex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool validUploadId(const std::string& id) {
  if (id.size() != 24) return false;
  for (char c : id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

void Provider::registerUploadRoutes(net::Router& router, const GatewayWorker& onWorker) {
  const std::string uploads = opts_.dataDir + "/uploads";
  std::error_code ec;
  fs::create_directories(uploads, ec);

  router.add("POST", "/gateway/v1/uploads", [this, uploads](const HttpRequest& req) {
    auto body = req.jsonBody();
    if (!body.isOk()) return HttpResponse::error(body.status());
    if (!body->is_object() || !(*body)["size"].is_number_integer() ||
        !(*body)["sha256"].is_string())
      return HttpResponse::error(
          invalidArgument("uploads: expected {\"size\": integer, \"sha256\": hex string}"));
    int64_t size = (*body)["size"].get<int64_t>();
    if (size <= 0 || size > opts_.config.maxBundleBytes)
      return HttpResponse::error(tooLarge("uploads: size " + std::to_string(size) +
                                          " is outside 1.." +
                                          std::to_string(opts_.config.maxBundleBytes)));
    std::string id = randomId();
    std::error_code e;
    fs::create_directories(uploads + "/" + id, e);
    std::ofstream(uploads + "/" + id + "/meta.json")
        << json{{"size", size}, {"sha256", (*body)["sha256"]}}.dump();
    std::ofstream(uploads + "/" + id + "/data", std::ios::binary);
    return HttpResponse::json(201, {{"uploadId", id}, {"offset", 0}, {"maxChunk", kMaxChunk}});
  });
  auto uploadState = [uploads](const std::string& id) -> Result<std::pair<int64_t, json>> {
    if (!validUploadId(id)) return notFound("no upload " + id);
    std::ifstream in(uploads + "/" + id + "/meta.json");
    if (!in) return notFound("no upload " + id);
    json meta = json::parse(in, nullptr, false);
    std::error_code e;
    auto offset = fs::file_size(uploads + "/" + id + "/data", e);
    if (e || meta.is_discarded()) return internalError("upload " + id + " is damaged");
    return std::pair<int64_t, json>{static_cast<int64_t>(offset), meta};
  };
  router.add("GET", "/gateway/v1/uploads/{id}", [uploadState](const HttpRequest& req) {
    auto st = uploadState(req.params.at("id"));
    if (!st.isOk()) return HttpResponse::error(st.status());
    return HttpResponse::json(200, {{"offset", st->first}, {"size", st->second["size"]}});
  });
  router.add("PUT", "/gateway/v1/uploads/{id}", [uploadState, uploads](const HttpRequest& req) {
    const std::string id = req.params.at("id");
    auto st = uploadState(id);
    if (!st.isOk()) return HttpResponse::error(st.status());
    int64_t offset = -1;
    try {
      offset = std::stoll(req.queryParam("offset").value_or("-1"));
    } catch (const std::exception&) {
    }
    if (offset != st->first)
      return HttpResponse::json(
          409, {{"error",
                 {{"code", "failed_precondition"},
                  {"message", "upload " + id + " is at offset " + std::to_string(st->first)}}},
                {"offset", st->first}});
    int64_t size = st->second["size"].get<int64_t>();
    if (req.body.size() > kMaxChunk || offset + static_cast<int64_t>(req.body.size()) > size)
      return HttpResponse::error(tooLarge("upload " + id + ": chunk beyond the declared size"));
    std::ofstream out(uploads + "/" + id + "/data", std::ios::binary | std::ios::app);
    out.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
    out.flush();
    if (!out) return HttpResponse::error(internalError("upload " + id + ": write failed"));
    return HttpResponse::json(200, {{"offset", offset + static_cast<int64_t>(req.body.size())}});
  });
  router.addAsync(
      "POST", "/gateway/v1/uploads/{id}/deploy",
      [this, onWorker, uploadState, uploads](HttpRequest req, std::shared_ptr<ResponseWriter> w) {
        onWorker(w, [this, uploadState, uploads, id = req.params.at("id")] {
          auto st = uploadState(id);
          if (!st.isOk()) return HttpResponse::error(st.status());
          if (st->first != st->second["size"].get<int64_t>())
            return HttpResponse::error(failedPrecondition(
                "upload " + id + " is incomplete: " + std::to_string(st->first) + " of " +
                std::to_string(st->second["size"].get<int64_t>()) + " bytes"));
          std::ifstream in(uploads + "/" + id + "/data", std::ios::binary);
          std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          unsigned char digest[crypto_hash_sha256_BYTES];
          crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size());
          std::string hex =
              toHex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
          if (hex != st->second["sha256"].get<std::string>())
            return HttpResponse::error(invalidArgument("upload " + id + ": sha256 is " + hex +
                                                       ", not the declared " +
                                                       st->second["sha256"].get<std::string>()));
          auto r = acceptBundle(data);
          std::error_code e;
          fs::remove_all(uploads + "/" + id, e);
          if (!r.isOk()) return HttpResponse::error(r.status());
          return HttpResponse::json(201, *r);
        });
      });
}

}  // namespace mercato::provider
