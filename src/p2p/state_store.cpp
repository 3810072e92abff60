#include "p2p/state_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace mercato::p2p {

namespace fs = std::filesystem;

Result<P2pState> loadP2pState(const std::string& path) {
  P2pState s;
  if (!fs::exists(path)) return s;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    auto j = nlohmann::json::parse(ss.str());
    if (j.value("version", 0) != 1) return invalidArgument(path + ": unsupported version");
    s.name = j.value("name", "");
    s.recordSeq = j.value("recordSeq", uint64_t{0});
    s.publicJoined = j.value("public", true);
    s.networkKeys = j.value("networks", std::vector<std::string>{});
  } catch (const std::exception& e) {
    return invalidArgument(path + ": corrupt p2p state: " + e.what());
  }
  return s;
}

Status saveP2pState(const std::string& path, const P2pState& s) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return unavailable("cannot create " + fs::path(path).parent_path().string());
  nlohmann::json j = {{"version", 1},
                      {"name", s.name},
                      {"recordSeq", s.recordSeq},
                      {"public", s.publicJoined},
                      {"networks", s.networkKeys}};
  const std::string body = j.dump(2) + "\n";
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable("cannot write " + tmp);
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok) return unavailable("cannot write " + tmp);
  fs::rename(tmp, path, ec);
  if (ec) return unavailable("cannot rename " + tmp + ": " + ec.message());
  return Status::ok();
}

}  // namespace mercato::p2p
