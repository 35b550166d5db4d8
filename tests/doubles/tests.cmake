# Doubles' fidelity tests (label "doubles"): the Kubernetes API double driven by the
# real kubectl at both ends of the dispatcher's range, plus its own semantics tests.
set(CCM_DOUBLES_DIR ${CMAKE_CURRENT_LIST_DIR})

foreach(kver 1.27 1.33)
  add_test(NAME doubles_kube_fidelity_${kver}
    COMMAND /usr/bin/python3 ${CCM_DOUBLES_DIR}/test_kube_apiserver_fidelity.py --version ${kver})
  set_tests_properties(doubles_kube_fidelity_${kver} PROPERTIES LABELS doubles TIMEOUT 900)
endforeach()

add_test(NAME doubles_kube_semantics
  COMMAND /usr/bin/python3 -m unittest -v test_kube_semantics
  WORKING_DIRECTORY ${CCM_DOUBLES_DIR})
set_tests_properties(doubles_kube_semantics PROPERTIES LABELS doubles TIMEOUT 600
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

# AWS double (tests/doubles/aws.py): boto3 (Debian python3-boto3) calls every EC2, ELB,
# ELBv2, STS and IMDSv2 operation the aws module uses, and its parsers and retries must accept
# the answers.
add_test(NAME doubles_aws_fidelity
  COMMAND /usr/bin/python3 ${CCM_DOUBLES_DIR}/test_aws_fidelity.py)
set_tests_properties(doubles_aws_fidelity PROPERTIES LABELS doubles TIMEOUT 600
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
