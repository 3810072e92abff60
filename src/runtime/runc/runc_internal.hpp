// Private to the runc backend: the in-memory records RuncRuntime keeps per deployment and
// instance (mirrors of the StateStore rows plus what is only known while running).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/runc/image/image_store.hpp"
#include "runtime/runc/runc_runtime.hpp"

namespace mercato::runtime::runc {

struct RuncRuntime::Deployment {
  DeploymentRow row;
  DeploymentSpec spec;
  std::map<std::string, image::Image> images;  // by service name
  std::mutex opMu;                             // serializes lifecycle changes
  bool removed = false;
};

struct RuncRuntime::Instance {
  InstanceRow row;
  bool ready = false;
  std::vector<PortSpec> ports;
  UsageRow usage;
};

std::string netnsNameFor(const std::string& containerId);
std::string cgroupPathFor(const std::string& containerId);
// Non-blocking connect with a timeout: is something listening on ip:port?
bool portAnswers(const std::string& ip, uint16_t port, int timeoutMs);

}  // namespace mercato::runtime::runc
