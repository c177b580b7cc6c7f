#include "operators/ecg/af_model.h"

#include <mutex>

#include "operators/ecg/af_model_embedded.h"

namespace vigil::ecg {

namespace {
std::mutex model_mutex;
std::shared_ptr<const ops::TreeEnsemble> installed;
}  // namespace

std::shared_ptr<const ops::TreeEnsemble> CurrentAfModel() {
  std::lock_guard lock(model_mutex);
  if (!installed) {
    auto model = std::make_shared<const ops::TreeEnsemble>(
        ops::TreeEnsemble::Parse(kEmbeddedAfModel, "models/ecg_af.model (embedded)"));
    model->RequireFeatures(kAfModelFeatures, "models/ecg_af.model (embedded)");
    installed = std::move(model);
  }
  return installed;
}

void InstallAfModel(const std::filesystem::path& path) {
  auto model = std::make_shared<const ops::TreeEnsemble>(ops::TreeEnsemble::Load(path));
  model->RequireFeatures(kAfModelFeatures, path.string());
  std::lock_guard lock(model_mutex);
  installed = std::move(model);
}

}  // namespace vigil::ecg
