#include "runtime/runc/image/reference.hpp"

#include "runtime/runc/image/digest.hpp"

namespace mercato::runtime::image {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
Status validateComponent(std::string_view c, std::string_view whole) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("image reference \"" + std::string(whole) +
                           "\": repository component \"" + std::string(c) + "\" " + why);
  };
  if (c.empty()) return bad("is empty (double or trailing '/')");
  for (char ch : c)
    if (ch >= 'A' && ch <= 'Z') return bad("must be lowercase");
  if (!isLowerAlnum(c.front()) || !isLowerAlnum(c.back()))
    return bad("must start and end with a lowercase letter or digit");
  size_t i = 0;
  while (i < c.size()) {
    if (isLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !isLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == sep.npos;
    if (!ok) return bad("has an invalid separator \"" + std::string(sep) + "\"");
    i = j;
  }
  return Status::ok();
}

Status validateTag(std::string_view tag, std::string_view whole) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("image reference \"" + std::string(whole) + "\": tag \"" +
                           std::string(tag) + "\" " + why);
  };
  if (tag.empty()) return bad("is empty after ':'");
  if (tag.size() > 128) return bad("is longer than 128 characters");
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag[0])) return bad("must start with a letter, digit or '_'");
  for (char c : tag)
    if (!word(c) && c != '.' && c != '-') return bad("may only contain [A-Za-z0-9_.-]");
  return Status::ok();
}

Status validateRegistry(std::string_view host, std::string_view whole) {
  auto bad = [&](const std::string& why) {
    return invalidArgument("image reference \"" + std::string(whole) + "\": registry \"" +
                           std::string(host) + "\" " + why);
  };
  std::string_view hostPart = host;
  if (!host.empty() && host[0] == '[') {  // [::1]:5000
    auto close = host.find(']');
    if (close == host.npos) return bad("has an unterminated '['");
    hostPart = host.substr(1, close - 1);
    auto rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("has garbage after ']'");
      hostPart = {};  // port checked below
      auto port = rest.substr(1);
      if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
        return bad("has an invalid port");
    }
    return Status::ok();
  }
  auto colon = host.rfind(':');
  if (colon != host.npos) {
    auto port = host.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos)
      return bad("has an invalid port \"" + std::string(port) + "\"");
    hostPart = host.substr(0, colon);
  }
  if (hostPart.empty()) return bad("has an empty host name");
  for (char c : hostPart) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-';
    if (!ok) return bad("contains an invalid character");
  }
  return Status::ok();
}

}  // namespace

std::string Reference::name() const { return registry + "/" + repository; }

std::string Reference::toString() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::apiHost() const {
  return registry == kDefaultRegistry ? "registry-1.docker.io" : registry;
}

Result<Reference> parseReference(std::string_view text) {
  if (text.empty()) return invalidArgument("image reference is empty");
  if (text.size() > 512) return invalidArgument("image reference is longer than 512 characters");
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
      return invalidArgument("image reference \"" + std::string(text.substr(0, 80)) +
                             "\" contains whitespace or a non-ASCII character");
  Reference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != rest.npos) {
    std::string_view digest = rest.substr(at + 1);
    Status st = validateDigest(digest, "image reference \"" + std::string(text) + "\": digest");
    if (!st.isOk()) return st;
    ref.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // Registry: first component if it looks like a host.
  if (auto slash = rest.find('/'); slash != rest.npos) {
    std::string_view first = rest.substr(0, slash);
    if (first.find('.') != first.npos || first.find(':') != first.npos || first == "localhost" ||
        (!first.empty() && first[0] == '[')) {
      RETURN_IF_ERROR(validateRegistry(first, text));
      ref.registry = std::string(first);
      rest = rest.substr(slash + 1);
    }
  }
  if (ref.registry.empty()) ref.registry = std::string(kDefaultRegistry);
  // Tag: after the last ':' of the last path component.
  auto lastSlash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != rest.npos && (lastSlash == rest.npos || colon > lastSlash)) {
    std::string_view tag = rest.substr(colon + 1);
    RETURN_IF_ERROR(validateTag(tag, text));
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty())
    return invalidArgument("image reference \"" + std::string(text) + "\": repository is empty");
  size_t start = 0;
  while (true) {
    auto slash = rest.find('/', start);
    RETURN_IF_ERROR(validateComponent(
        rest.substr(start, slash == rest.npos ? rest.npos : slash - start), text));
    if (slash == rest.npos) break;
    start = slash + 1;
  }
  ref.repository = std::string(rest);
  if (ref.registry == kDefaultRegistry && ref.repository.find('/') == std::string::npos)
    ref.repository = "library/" + ref.repository;
  if (ref.name().size() > 255)
    return invalidArgument("image reference \"" + std::string(text.substr(0, 80)) +
                           "...\": name is longer than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

std::string registryScheme(std::string_view host, const std::vector<std::string>& insecure) {
  std::string_view bare = host;
  if (!bare.empty() && bare[0] == '[') {
    auto close = bare.find(']');
    bare = bare.substr(1, close == bare.npos ? bare.npos : close - 1);
  } else if (auto colon = bare.rfind(':'); colon != bare.npos) {
    bare = bare.substr(0, colon);
  }
  bool ipv4Loopback =
      bare.substr(0, 4) == "127." && bare.find_first_not_of("0123456789.") == bare.npos;
  if (bare == "localhost" || bare == "::1" || ipv4Loopback) return "http";
  for (const auto& h : insecure)
    if (h == host || h == bare) return "http";
  return "https";
}

}  // namespace mercato::runtime::image
