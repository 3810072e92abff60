// image_pull: how fast the image store pulls and unpacks a realistic image, against `tar -xzf`.
//
// Generates ~80 MB of mixed files (~700: mostly small text-like files, half-random
// binaries, a few large incompressible files, symlinks), builds a one-layer OCI image with
// the layout writer, pushes it to a docker-registry on loopback with our client, then times:
//   1. ImageStore::pull into a fresh cache (manifest + blobs over HTTP, sha256, unpack, SQLite);
//   2. applyLayer() alone on the same layer blob (unpack only);
//   3. `tar -xzf` of the same blob (GNU tar + gzip, the reference).
// Prints MB/s over compressed and unpacked bytes and the ratios. Run as root (ownership).
// Usage: image_pull [--mb N] (default 80)
// Any step that fails, the `tar -xzf` reference included, exits 1 with the reason and prints no
// ratio.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "fixtures.hpp"
#include "runtime/runc/image/image_store.hpp"
#include "runtime/runc/image/oci_layout.hpp"
#include "runtime/runc/image/unpack.hpp"

namespace fs = std::filesystem;
using namespace mercato::runtime::image;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

uint64_t generateTree(const std::string& root, uint64_t targetBytes) {
  std::mt19937_64 rng(42);
  static const char* words[] = {"lorem ",     "ipsum ", "dolor ", "sit ",      "amet ", "mercato ",
                                "container ", "image ", "layer ", "registry ", "\n",    "{}\n"};
  uint64_t total = 0;
  int n = 0;
  while (total < targetBytes) {
    std::string dir = root + "/d" + std::to_string(n % 64) + "/s" + std::to_string(n % 7);
    fs::create_directories(dir);
    std::string path = dir + "/f" + std::to_string(n);
    uint64_t kind = rng() % 100;
    std::string data;
    if (kind < 85) {  // text-like files: mostly small (<= 8 KB), some up to 256 KB
      size_t size = 100 + rng() % (kind < 70 ? 8192 : 262144);
      while (data.size() < size) data += words[rng() % 12];
    } else if (kind < 97) {  // binary-ish: half random, half zeros, up to 512 KB
      size_t size = 4096 + rng() % (512 << 10);
      data.resize(size);
      for (size_t i = 0; i < size / 2; i += 8) {
        uint64_t r = rng();
        std::memcpy(&data[i], &r, std::min<size_t>(8, size / 2 - i));
      }
    } else {  // a large incompressible file now and then (1-3 MB)
      size_t size = (1 << 20) + rng() % (2 << 20);
      data.resize(size);
      for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t r = rng();
        std::memcpy(&data[i], &r, 8);
      }
    }
    std::ofstream(path, std::ios::binary).write(data.data(), static_cast<long>(data.size()));
    if (n % 50 == 0) fs::create_symlink("f" + std::to_string(n), dir + "/link" + std::to_string(n));
    total += data.size();
    ++n;
  }
  std::printf("generated %d files, %.1f MB\n", n, total / 1e6);
  return total;
}

int run(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mb = 80;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--mb") mb = std::strtoull(argv[i + 1], nullptr, 10);
  if (mb == 0) {
    std::fprintf(stderr, "usage: image_pull [--mb N], N > 0\n");
    return 2;
  }
  mercato::testing::TempDir tmp("mercato-image-bench");
  std::string src = tmp.path() + "/src", layout = tmp.path() + "/layout";
  generateTree(src, mb << 20);

  auto t0 = Clock::now();
  BuildOptions options;
  options.config.entrypoint = {"/bin/true"};
  auto built = buildImage(src, layout, options);
  if (!built.isOk()) {
    std::fprintf(stderr, "build: %s\n", built.status().toString().c_str());
    return 1;
  }
  auto t1 = Clock::now();
  std::printf("built layer: %.1f MB compressed in %.2f s\n", built->layers[0].size / 1e6,
              seconds(t0, t1));

  mercato::testing::RegistryProcess registry;
  if (auto st = registry.start(); !st.isOk()) {
    std::fprintf(stderr, "registry: %s\n", st.toString().c_str());
    return 1;
  }
  auto ref = parseReference(registry.host() + "/bench/image:v1");
  auto client = RegistryClient::create({});
  if (!ref.isOk() || !client.isOk()) {
    std::fprintf(stderr, "registry client: %s\n",
                 (ref.isOk() ? client.status() : ref.status()).toString().c_str());
    return 1;
  }
  if (auto pushed = pushLayout(*built, **client, *ref); !pushed.isOk()) {
    std::fprintf(stderr, "push: %s\n", pushed.status().toString().c_str());
    return 1;
  }

  ImageStoreConfig config;
  config.root = tmp.path() + "/cache";
  auto store = ImageStore::create(config);
  if (!store.isOk()) {
    std::fprintf(stderr, "image store: %s\n", store.status().toString().c_str());
    return 1;
  }
  auto p0 = Clock::now();
  auto img = (*store)->pull(ref->toString());
  auto p1 = Clock::now();
  if (!img.isOk()) {
    std::fprintf(stderr, "pull: %s\n", img.status().toString().c_str());
    return 1;
  }
  double compressed = img->compressedBytes / 1e6, unpacked = img->unpackedBytes / 1e6;
  double pullS = seconds(p0, p1);

  std::string blob = built->blobPath(built->layers[0].digest);
  std::string ours = tmp.path() + "/ours", tarDir = tmp.path() + "/tar";
  fs::create_directories(ours);
  fs::create_directories(tarDir);
  run({"sync"});
  auto u0 = Clock::now();
  UnpackBudget budget;
  if (auto st = applyLayer(blob, ours, budget); !st.isOk()) {
    std::fprintf(stderr, "unpack: %s\n", st.toString().c_str());
    return 1;
  }
  auto u1 = Clock::now();
  auto r0 = Clock::now();
  if (const int rc = run({"tar", "-xzf", blob, "-C", tarDir}); rc != 0) {
    std::fprintf(stderr, "the reference `tar -xzf %s` failed (%s)\n", blob.c_str(),
                 rc == 127 ? "tar not found" : ("exit status " + std::to_string(rc)).c_str());
    return 1;
  }
  auto r1 = Clock::now();
  double unpackS = seconds(u0, u1), tarS = seconds(r0, r1);

  std::printf("\nimage: %.1f MB compressed, %.1f MB unpacked, 1 layer\n", compressed, unpacked);
  std::printf("%-34s %7.2f s  %7.1f MB/s compressed  %7.1f MB/s unpacked\n",
              "ImageStore::pull (http+verify+unpack)", pullS, compressed / pullS, unpacked / pullS);
  std::printf("%-34s %7.2f s  %7.1f MB/s compressed  %7.1f MB/s unpacked\n",
              "applyLayer (unpack only)", unpackS, compressed / unpackS, unpacked / unpackS);
  std::printf("%-34s %7.2f s  %7.1f MB/s compressed  %7.1f MB/s unpacked\n", "tar -xzf (reference)",
              tarS, compressed / tarS, unpacked / tarS);
  std::printf("ratio pull / tar: %.2fx the time; unpack-only / tar: %.2fx the time\n", pullS / tarS,
              unpackS / tarS);
  return 0;
}
