#include "pipeline/service/log_id.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <memory>

namespace vigil::service {

std::string PatientLogId(std::string_view salt, std::string_view patient_id) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  const char separator = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), &separator, 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), patient_id.data(), patient_id.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &size) != 1) {
    return "hash-unavailable";
  }
  std::string out;
  for (unsigned int i = 0; i < 6 && i < size; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

}  // namespace vigil::service
