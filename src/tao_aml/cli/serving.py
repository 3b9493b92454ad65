"""Serving a model asset: `triton` (a Triton model repository), `predict` (locally or through an endpoint),
`deploy` (a managed online endpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tao_aml.cli.common import EXIT_AZURE, EXIT_OK, EXIT_USAGE, add_workspace_arguments, error, positive_int
from tao_aml.repo import run_cost


def serving_extra_missing(command: str, err: ImportError) -> int:
    from tao_aml.serve import INSTALL

    error(f"tao-aml {command} needs the serving extra ({err.name} is missing): {INSTALL}")
    return EXIT_USAGE


def cmd_triton(args: argparse.Namespace) -> int:
    try:
        from tao_aml.serve.detectnet_v2 import DecodeError, Decoder
        from tao_aml.serve.runtime import PredictError, load_card
    except ImportError as err:
        return serving_extra_missing("triton", err)
    from tao_aml.simulate import simulated_folder
    from tao_aml.steps.asset.deploy_bundle import plan_problem, triton_repository
    from tao_aml.steps.common import StepError

    model_dir, target = Path(args.model_dir), Path(args.output_dir)
    try:
        simulated = simulated_folder(model_dir)
        if simulated:
            raise PredictError(simulated)
        card = load_card(model_dir)
        Decoder(card["postprocessing"])  # the network section config.pbtxt is written from
        if target.exists() and any(target.iterdir()):
            raise PredictError(f"{target} is not empty: give a new folder for the Triton repository")
        engine = card.get("engine")
        tensorrt = (engine or {}).get("tensorrt")  # --plan: the user's Triton carries the engine's TensorRT
        problem = plan_problem(engine, args.gpu, tensorrt) if args.plan else None
        if problem:
            raise PredictError(f"no TensorRT plan for {args.gpu} GPUs: {problem}")
        name = (card.get("triton") or {}).get("model") or card.get("name") or "detectnet_v2"
        triton = triton_repository(str(model_dir), str(target), card["postprocessing"], engine, args.plan, name,
                                   args.gpu, tensorrt)
    except (PredictError, StepError, DecodeError) as err:
        error(str(err))
        return EXIT_USAGE
    print(f"Triton model repository in {target}: {', '.join(triton['models'])} "
          f"(tritonserver --model-repository {target})")
    if triton["plan"]["included"]:
        print(f"model.plan loads only on {args.gpu} GPUs in a Triton with TensorRT {tensorrt}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    try:
        from tao_aml.serve.detectnet_v2 import DecodeError, Decoder
        from tao_aml.serve.runtime import LocalModel, PredictError, load_card, onnx_in, predict
    except ImportError as err:
        return serving_extra_missing("predict", err)

    from tao_aml.simulate import simulated_problem

    if args.endpoint and not args.model_dir:
        error("--endpoint needs --model-dir: the downloaded model asset folder, whose model card holds the thresholds")
        return EXIT_USAGE
    model_dir = Path(args.local or args.model_dir)
    try:
        card = load_card(model_dir)
        decoder = Decoder(card["postprocessing"])
        if args.local:
            model = LocalModel(onnx_in(model_dir), decoder)
        else:
            model = endpoint_model(args, card, decoder)
        predictions = predict(model, decoder, [Path(p) for p in args.images], Path(args.output_dir), args.batch_size)
    except (PredictError, DecodeError) as err:
        error(str(err))
        return EXIT_USAGE
    except _WorkspaceFailure as err:
        error(str(err))
        return EXIT_AZURE
    print(f"model {card.get('name') or model_dir}: classes {', '.join(decoder.classes)}")
    for prediction in predictions:
        boxes = "; ".join(f"{d.label} {d.score:.2f} ({d.score_is}) [{d.x1:.0f}, {d.y1:.0f}, {d.x2:.0f}, {d.y2:.0f}]"
                          for d in prediction.detections) or "no detections"
        print(f"{prediction.image}: {boxes}")
    print(f"boxes (JSON) and annotated images written to {args.output_dir}")
    if simulated_problem(card.get("tags"), ""):
        print("this model was made by tao-aml rehearse with TAO simulated: its boxes show the output format, "
              "not what a trained model finds")
    return EXIT_OK


class _WorkspaceFailure(RuntimeError):
    """The endpoint could not be looked up in the workspace (sign-in, workspace or endpoint missing)."""


def endpoint_model(args: argparse.Namespace, card: dict, decoder):  # type: ignore[no-untyped-def]
    """The Triton model behind a managed online endpoint, with the endpoint's key (never printed)."""
    from azure.core.exceptions import ResourceNotFoundError

    from tao_aml.azure.workspace import WorkspaceError, azure_errors, connect, resolve_target
    from tao_aml.serve.runtime import PredictError, TritonModel

    triton = card.get("triton") or {}
    if not triton.get("model"):
        raise PredictError(f"the model card in {args.model_dir} names no Triton model (no triton/ repository)")
    try:
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            endpoint = client.online_endpoints.get(args.endpoint)
            key = client.online_endpoints.get_keys(args.endpoint).primary_key
    except ResourceNotFoundError:
        raise _WorkspaceFailure(f"endpoint {args.endpoint} not found in the workspace (tao-aml deploy creates it)") \
            from None
    except WorkspaceError as err:
        raise _WorkspaceFailure(str(err)) from err
    return TritonModel(str(endpoint.scoring_uri), triton["model"], decoder, key=key)


def cmd_deploy(args: argparse.Namespace) -> int:
    from tao_aml.azure.endpoint import EndpointError, deploy, how_to_call, plan, write_plan
    from tao_aml.azure.workspace import WorkspaceError, azure_errors, connect, resolve_target

    try:
        planned = plan(args.endpoint, args.model, args.deployment, args.instance_type, args.instance_count)
        written = write_plan(planned, Path(args.output_dir) / "deploy")
    except EndpointError as err:
        error(str(err))
        return EXIT_USAGE
    print(f"endpoint {planned.endpoint.name}, deployment {planned.deployment.name}: {planned.deployment.instance_count}"
          f" x {planned.deployment.instance_type}, Triton model {args.model}; validated offline")
    print("bodies as sent written to " + ", ".join(map(str, written)))
    print(run_cost.monthly_line(args.instance_type, args.instance_count))
    if args.dry_run:
        return EXIT_OK
    try:
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            endpoint, triton_model = deploy(client, planned, print)
    except EndpointError as err:
        error(str(err))
        return EXIT_USAGE
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    print(f"endpoint {endpoint.name} is ready in {target}, all traffic to {planned.deployment.name}")
    for line in how_to_call(endpoint, triton_model):
        print(line)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from tao_aml.steps.asset.deploy_bundle import COMPUTE_CAPABILITY, DEFAULT_SERVING_GPU

    triton = sub.add_parser(
        "triton", parents=[common], help="lay out a Triton model repository from a downloaded DetectNet_v2 model asset"
    )
    triton.add_argument("model_dir", metavar="MODEL_DIR", help="the model asset folder (model_card.json, model.onnx)")
    triton.add_argument("--output-dir", required=True, help="a new or empty folder for the repository")
    triton.add_argument("--plan", action="store_true",
                        help="also the TensorRT engine as a tensorrt_plan model, for a Triton with the engine's "
                             "TensorRT on --gpu (refused when the engine was built on another GPU family)")
    triton.add_argument("--gpu", choices=sorted(COMPUTE_CAPABILITY), default=DEFAULT_SERVING_GPU,
                        help=f"the GPU Triton serves on (default {DEFAULT_SERVING_GPU})")
    triton.set_defaults(func=cmd_triton)

    predict = sub.add_parser(
        "predict", parents=[common],
        help="detect the classes of a DetectNet_v2 model asset on images (its card names them): locally "
             "(onnxruntime) or through its endpoint",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", metavar="MODEL_DIR", help="run model.onnx of this model asset folder on the CPU")
    where.add_argument("--endpoint", help="a managed online endpoint made by tao-aml deploy (needs --model-dir)")
    predict.add_argument("--model-dir", help="with --endpoint: the model asset folder (its card's thresholds)")
    predict.add_argument("--output-dir", default="predictions", help="where boxes (JSON) and annotated images go")
    predict.add_argument("--batch-size", type=positive_int, default=1, help="images per inference call")
    add_workspace_arguments(predict)
    predict.set_defaults(func=cmd_predict)

    deploy = sub.add_parser(
        "deploy", parents=[common], help="serve a registered Triton model on a managed online endpoint"
    )
    deploy.add_argument("--model", required=True, metavar="NAME:VERSION",
                        help="the triton_model asset tao-aml model register made, e.g. tao-detectnet-v2-triton:1")
    deploy.add_argument("--endpoint", required=True, help="endpoint name (3-32 letters, digits, '-')")
    deploy.add_argument("--deployment", default="tao", help="deployment name (default tao)")
    deploy.add_argument("--instance-type", default="Standard_NC4as_T4_v3",
                        help="GPU size (default Standard_NC4as_T4_v3, 1 x T4)")
    deploy.add_argument("--instance-count", type=positive_int, default=1)
    deploy.add_argument("--dry-run", action="store_true", help="build and validate offline; nothing is sent")
    deploy.add_argument("--output-dir", default="build", help="where the endpoint and deployment bodies go")
    add_workspace_arguments(deploy)
    deploy.set_defaults(func=cmd_deploy)
