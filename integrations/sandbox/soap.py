"""SOAP 1.1 for the sandboxes: a document/literal service whose operations take and return strings,
its WSDL, reading a request envelope and writing the answer or a Fault.

Written from the SOAP 1.1 note (W3C, 2000) and WSDL 1.1, with the stdlib only: the sandbox shares no
code with the clients, so a mistake on either side shows up as a failure.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


class SoapFault(Exception):
    """A SOAP 1.1 Fault. `code` is Client, Server, VersionMismatch or MustUnderstand; `detail` is False
    for faults about the envelope or its headers (SOAP 1.1 keeps <detail> for Body processing)."""

    def __init__(self, code: str, message: str, *, detail: bool = True, http_status: int = 500,
                 headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.http_status = http_status
        self.headers = headers or {}


@dataclass(frozen=True)
class Operation:
    name: str
    inputs: tuple[str, ...]  # string parameters, in order
    output: str = "result"


@dataclass
class Call:
    operation: Operation
    arguments: dict[str, str] = field(default_factory=dict)


def _local(tag: str) -> tuple[str, str]:
    namespace, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, name


class DocumentLiteralService:
    """One WSDL service: a portType, a SOAP 1.1 document/literal binding and a port, every operation
    wrapped in an element of its own name (the `<name>Response` element on the way back), every part
    an xsd:string. Faults carry a `FaultDetail` (errorMessage, requestID) in `<detail>`."""

    def __init__(self, *, namespace: str, name: str, operations: list[Operation], soap_action: str = "",
                 documentation: str = ""):
        self.namespace = namespace
        self.name = name
        self.operations = {operation.name: operation for operation in operations}
        self.soap_action = soap_action
        self.documentation = documentation

    # --- WSDL --------------------------------------------------------------------------------

    def wsdl(self, location: str) -> bytes:
        ns, obj = self.namespace, f"{self.name}Obj"

        def sequence(names):
            return "".join(f'<xsd:element name="{n}" type="xsd:string" nillable="true"/>' for n in names)

        elements, messages, port_ops, binding_ops = [], [], [], []
        for op in self.operations.values():
            elements.append(f'<xsd:element name="{op.name}"><xsd:complexType><xsd:sequence>{sequence(op.inputs)}'
                            f'</xsd:sequence></xsd:complexType></xsd:element>'
                            f'<xsd:element name="{op.name}Response"><xsd:complexType><xsd:sequence>'
                            f'{sequence([op.output])}</xsd:sequence></xsd:complexType></xsd:element>')
            messages.append(f'<wsdl:message name="{op.name}"><wsdl:part name="parameters" element="tns:{op.name}"/>'
                            f'</wsdl:message><wsdl:message name="{op.name}Response"><wsdl:part name="parameters" '
                            f'element="tns:{op.name}Response"/></wsdl:message>')
            port_ops.append(f'<wsdl:operation name="{op.name}"><wsdl:input message="tns:{op.name}"/>'
                            f'<wsdl:output message="tns:{op.name}Response"/>'
                            f'<wsdl:fault name="{self.name}Fault" message="tns:FaultDetailMessage"/></wsdl:operation>')
            binding_ops.append(f'<wsdl:operation name="{op.name}">'
                               f'<soap:operation soapAction={quoteattr(self.soap_action)} style="document"/>'
                               f'<wsdl:input><soap:body use="literal"/></wsdl:input>'
                               f'<wsdl:output><soap:body use="literal"/></wsdl:output>'
                               f'<wsdl:fault name="{self.name}Fault"><soap:fault name="{self.name}Fault" use="literal"/>'
                               f'</wsdl:fault></wsdl:operation>')
        text = (
            f'{XML_DECLARATION}<wsdl:definitions name="{self.name}" targetNamespace={quoteattr(ns)} '
            f'xmlns:tns={quoteattr(ns)} xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
            f'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            f'<wsdl:documentation>{escape(self.documentation)}</wsdl:documentation>'
            f'<wsdl:types><xsd:schema targetNamespace={quoteattr(ns)} elementFormDefault="qualified">'
            f'{"".join(elements)}<xsd:element name="FaultDetail"><xsd:complexType><xsd:sequence>'
            f'<xsd:element name="errorMessage" type="xsd:string"/><xsd:element name="requestID" type="xsd:string"/>'
            f'</xsd:sequence></xsd:complexType></xsd:element></xsd:schema></wsdl:types>'
            f'{"".join(messages)}<wsdl:message name="FaultDetailMessage"><wsdl:part name="FaultDetail" '
            f'element="tns:FaultDetail"/></wsdl:message>'
            f'<wsdl:portType name="{obj}">{"".join(port_ops)}</wsdl:portType>'
            f'<wsdl:binding name="{obj}" type="tns:{obj}"><soap:binding style="document" '
            f'transport="http://schemas.xmlsoap.org/soap/http"/>{"".join(binding_ops)}</wsdl:binding>'
            f'<wsdl:service name="{self.name}Service"><wsdl:port name="{obj}" binding="tns:{obj}">'
            f'<soap:address location={quoteattr(location)}/></wsdl:port></wsdl:service></wsdl:definitions>'
        )
        return text.encode("utf-8")

    # --- one request -------------------------------------------------------------------------

    def read(self, body: bytes, headers: dict[str, str]) -> Call:
        """The operation and its string arguments, or SoapFault (Client / VersionMismatch / MustUnderstand)."""
        if "soapaction" not in headers:
            raise SoapFault("Client", "A SOAP 1.1 request needs a SOAPAction header", detail=False)
        if b"<!DOCTYPE" in body.upper():
            raise SoapFault("Client", "A SOAP message must not contain a document type declaration", detail=False)
        try:
            envelope = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SoapFault("Client", f"The request is not well-formed XML: {exc}", detail=False) from None
        namespace, name = _local(envelope.tag)
        if name == "Envelope" and namespace != SOAP_ENV:
            version = "SOAP 1.2" if namespace == SOAP12_ENV else repr(namespace)
            raise SoapFault("VersionMismatch", f"Envelope namespace {version} is not SOAP 1.1 ({SOAP_ENV})",
                            detail=False)
        if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
            raise SoapFault("Client", f"The root element must be a SOAP Envelope, not {name}", detail=False)
        header = envelope.find(f"{{{SOAP_ENV}}}Header")
        for entry in header if header is not None else ():
            if entry.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1":
                raise SoapFault("MustUnderstand", f"Header {_local(entry.tag)[1]} is not understood", detail=False)
        soap_body = envelope.find(f"{{{SOAP_ENV}}}Body")
        if soap_body is None:
            raise SoapFault("Client", "The Envelope has no Body", detail=False)
        children = list(soap_body)
        if len(children) != 1:
            raise SoapFault("Client", f"The Body must hold one operation element, not {len(children)}")
        namespace, name = _local(children[0].tag)
        operation = self.operations.get(name)
        if operation is None or namespace != self.namespace:
            raise SoapFault("Client", f"Unknown operation {{{namespace}}}{name}; this service offers "
                                      f"{', '.join(self.operations)} in {self.namespace}")
        arguments = {}
        for element in children[0]:
            element_ns, element_name = _local(element.tag)
            if element_ns in (self.namespace, "") and element_name in operation.inputs:
                arguments[element_name] = element.text or ""
        missing = [n for n in operation.inputs if n not in arguments]
        if missing:
            raise SoapFault("Client", f"{operation.name} needs {', '.join(missing)}")
        return Call(operation, arguments)

    def answer(self, call: Call, value: str) -> bytes:
        """The response envelope: the string travels entity-escaped in the `<name>Response` element."""
        op = call.operation
        return self._envelope(f'<{op.name}Response xmlns={quoteattr(self.namespace)}>'
                              f'<{op.output}>{escape(value)}</{op.output}></{op.name}Response>')

    def fault(self, fault: SoapFault, request_id: str = "") -> bytes:
        detail = (f'<detail><FaultDetail xmlns={quoteattr(self.namespace)}><errorMessage>{escape(fault.message)}'
                  f'</errorMessage><requestID>{escape(request_id)}</requestID></FaultDetail></detail>'
                  if fault.detail else "")
        return self._envelope(f"<soap:Fault><faultcode>soap:{fault.code}</faultcode>"
                              f"<faultstring>{escape(fault.message)}</faultstring>{detail}</soap:Fault>")

    @staticmethod
    def _envelope(content: str) -> bytes:
        return (f'{XML_DECLARATION}<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{content}</soap:Body>'
                f'</soap:Envelope>').encode("utf-8")
