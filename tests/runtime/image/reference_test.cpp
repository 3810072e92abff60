#include "runtime/runc/image/reference.hpp"

#include <gtest/gtest.h>

namespace mercato::runtime::image {
namespace {

struct Good {
  const char* text;
  const char* registry;
  const char* repository;
  const char* tag;
  const char* digest;
  const char* canonical;
};

constexpr const char* kD =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(ReferenceTest, ParsesLikeDocker) {
  const std::string d = kD;
  const Good cases[] = {
      {"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest"},
      {"library/busybox:1.36", "docker.io", "library/busybox", "1.36", "",
       "docker.io/library/busybox:1.36"},
      {"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest"},
      {"127.0.0.1:5000/mercato/sample:v1", "127.0.0.1:5000", "mercato/sample", "v1", "",
       "127.0.0.1:5000/mercato/sample:v1"},
      {"localhost/a/b/c", "localhost", "a/b/c", "latest", "", "localhost/a/b/c:latest"},
      {"ghcr.io/org/my-app.x__y", "ghcr.io", "org/my-app.x__y", "latest", "",
       "ghcr.io/org/my-app.x__y:latest"},
      {"[::1]:5000/x:T_1.2-3", "[::1]:5000", "x", "T_1.2-3", "", "[::1]:5000/x:T_1.2-3"},
  };
  for (const auto& c : cases) {
    auto r = parseReference(c.text);
    ASSERT_TRUE(r.isOk()) << c.text << ": " << r.status().toString();
    EXPECT_EQ(r->registry, c.registry) << c.text;
    EXPECT_EQ(r->repository, c.repository) << c.text;
    EXPECT_EQ(r->tag, c.tag) << c.text;
    EXPECT_EQ(r->toString(), c.canonical) << c.text;
  }
  auto byDigest = parseReference("host.example/repo@" + d);
  ASSERT_TRUE(byDigest.isOk());
  EXPECT_EQ(byDigest->tag, "");
  EXPECT_EQ(byDigest->digest, d);
  EXPECT_EQ(byDigest->manifestSelector(), d);
  auto both = parseReference("repo:tag@" + d);
  ASSERT_TRUE(both.isOk());
  EXPECT_EQ(both->tag, "tag");
  EXPECT_EQ(both->digest, d);
  EXPECT_EQ(both->toString(), "docker.io/library/repo:tag@" + d);
  EXPECT_EQ(parseReference("busybox")->apiHost(), "registry-1.docker.io");
}

TEST(ReferenceTest, ErrorsNameThePart) {
  struct Bad {
    std::string text;
    const char* mentions;
  };
  const Bad cases[] = {
      {"", "empty"},
      {"Busybox", "lowercase"},
      {"repo:", "tag"},
      {"repo:-x", "tag"},
      {"repo:a/b", "port"},  // like docker: "repo:a" reads as host:port
      {"a//b", "empty"},
      {"a/-b", "repository component"},
      {"a/b..c", "separator"},
      {"repo@sha256:abc", "digest"},
      {"repo@md5:0123", "unsupported digest algorithm"},
      {std::string("repo@") + kD + "X", "digest"},
      {"host:abc/repo", "port"},
      {"ho_st.io/repo", "registry"},
      {"a b", "whitespace"},
      {std::string(300, 'a'), "longer"},
  };
  for (const auto& c : cases) {
    auto r = parseReference(c.text);
    ASSERT_FALSE(r.isOk()) << c.text;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

TEST(ReferenceTest, SchemeIsHttpOnlyForLoopbackAndInsecure) {
  EXPECT_EQ(registryScheme("127.0.0.1:5000", {}), "http");
  EXPECT_EQ(registryScheme("localhost", {}), "http");
  EXPECT_EQ(registryScheme("[::1]:5000", {}), "http");
  EXPECT_EQ(registryScheme("127.example.com", {}), "https");
  EXPECT_EQ(registryScheme("docker.io", {}), "https");
  EXPECT_EQ(registryScheme("10.0.0.5:5000", {"10.0.0.5:5000"}), "http");
  EXPECT_EQ(registryScheme("10.0.0.5:5000", {"10.0.0.5"}), "http");
  EXPECT_EQ(registryScheme("10.0.0.6:5000", {"10.0.0.5"}), "https");
}

}  // namespace
}  // namespace mercato::runtime::image
